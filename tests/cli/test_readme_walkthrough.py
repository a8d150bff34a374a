"""The README's walkthrough, word for word: a fails-when-a-step-breaks copy of what a newcomer types.

The commands are read from README.md itself (the "First steps with curl" block) and run in order with
bash, in a fresh temporary directory whose ``.venv`` is this interpreter's environment, against
``.venv/bin/reservekit serve`` on the embedded default started there. Only three things are replaced:
the placeholders the README asks the reader to fill in (``acct_…``, ``sk_rsv_…``, ``key_…``) and port
8000, which may be taken on a shared machine, by a free one. Each step's output is checked against what
the README says it prints. A new step in the README makes this test fail until it is checked here too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def readme_block(heading: str) -> list[str]:
    """The command lines of the first ```sh block after ``heading`` (comments and blanks dropped)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, f"no sh block after {heading!r}"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Walk:
    folder: Path
    port: int
    env: dict[str, str]
    server_output: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, command: str) -> str:
        command = command.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{command!r} exited {done.returncode}: {done.stderr}"
        # Logs go to stderr; the README's commands print their answer alone on stdout.
        return done.stdout


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[Walk]:
    folder = tmp_path / "newcomer"
    folder.mkdir()
    (folder / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESERVEKIT_")}  # the embedded default
    port = _free_port()
    output = tmp_path / "serve.out"
    # The README says `.venv/bin/reservekit serve`; --port only because 8000 may be taken here.
    with output.open("wb") as sink:
        server = subprocess.Popen(
            [".venv/bin/reservekit", "serve", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    walk = Walk(folder, port, env, output)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, output.read_text()
            try:
                if httpx.get(f"{walk.base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.1)
        yield walk
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def test_the_readme_walkthrough_works_word_for_word(walk: Walk) -> None:
    # "Two commands": the server runs on the embedded default in ./.reservekit and prints where it listens.
    assert readme_block("## Two commands")[0].endswith("&& .venv/bin/reservekit serve")
    printed = walk.server_output.read_text()
    assert f"ReserveKit key authority listening on {walk.base}\n" in printed
    assert f"Dashboard: {walk.base}/dashboard (sign up there to get a key)\n" in printed
    assert (walk.folder / ".reservekit" / "reservekit.db").is_file()
    assert (walk.folder / ".reservekit" / "pepper").is_file()
    # "Open that address + /dashboard ... to sign up".
    dashboard = httpx.get(f"{walk.base}/dashboard", follow_redirects=True, timeout=10)
    assert dashboard.status_code == 200
    assert "Create an account" in dashboard.text

    steps = readme_block("## First steps with curl")
    assert len(steps) == 6, steps
    create_account, create_key, export_key, call, revoke, call_again = steps

    # 1. An operator account and its first key (the secret is printed this once).
    assert "accounts create" in create_account
    opened = json.loads(walk.run(create_account))
    account_id = opened["account"]["id"]
    assert opened["account"]["operator"] is True
    assert opened["key"]["secret"].startswith("sk_rsv_")
    assert "platform:admin" in opened["key"]["scopes"]

    # 2. A key of that account for a backend (use the account id printed above).
    assert "acct_…" in create_key
    key = json.loads(walk.run(create_key.replace("acct_…", account_id)))
    assert (key["account_id"], key["name"], key["status"]) == (account_id, "backend", "active")
    assert key["secret"].startswith("sk_rsv_")

    # export KEY=sk_rsv_…  (the "secret" from step 2)
    assert export_key.startswith("export KEY=sk_rsv_…")
    walk.env["KEY"] = key["secret"]

    # 3. Call the API.
    listed = json.loads(walk.run(call))
    assert listed["data"] == []

    # 4. Revoke it through the API; the very next request is refused with 401 "API key revoked".
    assert "key_…" in revoke
    revoked = json.loads(walk.run(revoke.replace("key_…", key["id"])))
    assert (revoked["id"], revoked["status"]) == (key["id"], "revoked")
    assert "secret" not in revoked
    refused = json.loads(walk.run(call_again))
    assert (refused["status"], refused["code"]) == (401, "api_key_revoked")
    assert refused["title"] == "API key revoked"


def test_a_cli_revocation_reaches_the_running_server_at_its_next_poll(walk: Walk) -> None:
    """README: `reservekit keys revoke KEY_ID` does the same from the command line; a running server on
    the embedded default picks that up at its next poll."""
    opened = json.loads(walk.run('.venv/bin/reservekit accounts create --name "Ops" --json'))
    headers = {"Authorization": f"Bearer {opened['key']['secret']}"}
    assert httpx.get(f"{walk.base}/v1/services", headers=headers, timeout=10).status_code == 200
    walk.run(f".venv/bin/reservekit keys revoke {opened['key']['id']}")
    deadline = time.monotonic() + 30  # a bound for a loaded machine, not the measured interval
    while (answer := httpx.get(f"{walk.base}/v1/services", headers=headers, timeout=10)).status_code == 200:
        assert time.monotonic() < deadline, "the server never saw the CLI's revocation"
        time.sleep(0.05)
    assert (answer.status_code, answer.json()["title"]) == (401, "API key revoked")
