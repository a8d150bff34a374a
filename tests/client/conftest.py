"""A real authority on loopback: ``reservekit serve`` (Granian) as a subprocess on the test's database.

The client and the middleware talk to it over TCP exactly as another service would. The server can
be stopped and started again on the same port, to cut the change feed the hard way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_PEPPER

REDIS_URL = "redis://127.0.0.1:6379/0"


async def first_refusal(
    request: Callable[[], Awaitable[httpx.Response]], *, within: float = 10.0
) -> httpx.Response:
    """Repeat ``request`` while it is answered 200, for at most ``within`` seconds; the last answer.

    A revocation reaches a service through the change feed a moment after the revoke's own answer, so
    a test waits for it. How soon is tests/benchmarks/bench_middleware_revocation.py's to measure.
    """
    deadline = time.monotonic() + within
    response = await request()
    while response.status_code == 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
        response = await request()
    return response


_INHERITED = ("RESERVEKIT_DATABASE_URL", "RESERVEKIT_REDIS_URL", "RESERVEKIT_KEY_PEPPER")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Operator:
    account_id: str
    key_id: str
    secret: str


class LiveAuthority:
    def __init__(self, database_url: str, data_dir: Path, log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
        self.env.update(
            RESERVEKIT_DATABASE_URL=database_url,
            RESERVEKIT_KEY_PEPPER=TEST_PEPPER,
            RESERVEKIT_DATA_DIR=str(data_dir),
            RESERVEKIT_LOG_LEVEL="WARNING",
            RESERVEKIT_POLL_INTERVAL_SECONDS="0.1",
            # Shared quotas, so a middleware given the same Redis spends the same buckets.
            RESERVEKIT_REDIS_URL=REDIS_URL,
            PYTHONUNBUFFERED="1",
        )
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> object:
        done = subprocess.run(
            [sys.executable, "-m", "reservekit.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        if "--json" not in args:
            return done.stdout
        # The JSON document is the last line: lifecycle log lines may precede it on stdout.
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start(self) -> None:
        command = [sys.executable, "-m", "reservekit.cli.main", "serve", "--host", "127.0.0.1"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(self.log_path.read_text()[-2000:])

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        # Workers share the group and may outlive the parent briefly: wait until none is left, so the
        # port is free for a restart.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def authority(database_url: str, tmp_path: Path) -> Iterator[LiveAuthority]:
    live = LiveAuthority(database_url, tmp_path / "data", tmp_path / "server.log")
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def operator(authority: LiveAuthority) -> Operator:
    created = authority.cli(
        "accounts", "create", "--name", "Ops", "--operator", "--plan", "enterprise", "--json"
    )
    assert isinstance(created, dict)
    return Operator(created["account"]["id"], created["key"]["id"], created["key"]["secret"])
