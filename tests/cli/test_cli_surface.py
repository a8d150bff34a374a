"""The command line as a user meets it (issue 9): help, --json, exit codes, one-line errors, serve."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from reservekit.cli.main import build_parser
from tests.cli.test_cli import run
from tests.conftest import POSTGRES_ADMIN_URL, TEST_PEPPER


def _subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    found = {path: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _subcommands(sub, (*path, name))
    return found


def test_every_option_says_what_it_does_and_every_command_speaks_json() -> None:
    commands = _subcommands(build_parser())
    undocumented = [
        f"{' '.join(path)} {action.option_strings or action.dest}"
        for path, parser in commands.items()
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction) and not action.help
    ]
    assert undocumented == []
    leaves = [
        path
        for path, parser in commands.items()
        if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
    ]
    # serve runs a server, worker runs loops, export always writes JSON lines, completion writes a
    # shell script.
    without_json = {("serve",), ("worker",), ("audit", "export"), ("completion",)}
    missing = [
        " ".join(path)
        for path in leaves
        if path not in without_json and "--json" not in commands[path]._option_string_actions
    ]
    assert missing == []


def test_version_and_shell_completion() -> None:
    env = {**os.environ}
    version = run(env, "--version")
    assert version.returncode == 0
    assert version.stdout.strip() == "reservekit 0.1.0"
    completion = run(env, "completion", "bash")
    assert completion.returncode == 0
    assert "reservekit" in completion.stdout
    assert "rotate" in completion.stdout


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RESERVEKIT_DATABASE_URL": database_url,
        "RESERVEKIT_KEY_PEPPER": TEST_PEPPER,
        "RESERVEKIT_DATA_DIR": str(tmp_path / "data"),
    }


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_key_commands_answer_json_and_refuse_unknown_accounts(env: dict[str, str]) -> None:
    opened = json.loads(run(env, "accounts", "create", "--name", "Acme", "--json").stdout)
    key_id = opened["key"]["id"]

    unknown = run(env, "keys", "list", "--account", "acct_nope")
    assert unknown.returncode == 1
    assert "acct_nope" in _one_line_error(unknown)

    revoked = run(env, "keys", "revoke", key_id, "--reason", "rotated out", "--json")
    assert revoked.returncode == 0, revoked.stderr
    body = json.loads(revoked.stdout)
    assert (body["id"], body["status"]) == (key_id, "revoked")
    assert body["revoked_at"].endswith("Z")
    assert "secret" not in body

    exported = [json.loads(line) for line in run(env, "audit", "export").stdout.splitlines()]
    metadata = exported[-1]["metadata"]
    assert metadata["source"] == "cli"
    assert metadata["actor_host"] == socket.gethostname()
    assert metadata["actor_os_user"]


def test_rotation_prints_times_as_the_api_does(env: dict[str, str]) -> None:
    opened = json.loads(run(env, "accounts", "create", "--name", "Acme", "--json").stdout)
    rotated = run(env, "keys", "rotate", opened["key"]["id"], "--grace-period", "3600")
    assert rotated.returncode == 0, rotated.stderr
    until = rotated.stdout.split("works until ")[1].split()[0]
    assert until.endswith("Z")
    assert "+00:00" not in rotated.stdout


def test_status_verify_and_rebuild_speak_json(env: dict[str, str]) -> None:
    run(env, "accounts", "create", "--name", "Acme")
    status = json.loads(run(env, "projections", "status", "--json").stdout)
    assert {row["name"] for row in status} >= {"accounts", "api_keys"}
    assert all(row["lag"] == 0 for row in status)
    verified = run(env, "audit", "verify", "--json")
    assert verified.returncode == 0
    assert json.loads(verified.stdout) | {"head_hash": None} == {
        "intact": True,
        "events": 2,
        "head_position": 2,
        "head_hash": None,
        "first_bad_position": None,
        "reason": None,
        "checkpoint_problem": None,
    }
    rebuilt = run(env, "projections", "rebuild", "api_keys", "--verify", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)[0]["differences"] == []


def test_positions_must_exist_and_forensic_copies_can_be_listed_and_dropped(env: dict[str, str]) -> None:
    run(env, "accounts", "create", "--name", "Acme")
    negative = run(env, "projections", "rebuild", "api_keys", "--until-position", "-1")
    assert negative.returncode == 2
    assert "positions start at 1" in negative.stderr
    past = run(env, "projections", "rebuild", "api_keys", "--until-position", "99")
    assert past.returncode == 1
    assert "past the log head (2)" in _one_line_error(past)

    assert run(env, "projections", "rebuild", "api_keys", "--until-position", "1").returncode == 0
    copies = json.loads(run(env, "projections", "copies", "list", "--json").stdout)
    assert copies == ["proj_api_keys__asof_1"]
    live = run(env, "projections", "copies", "drop", "proj_api_keys")
    assert live.returncode == 1
    assert "not a forensic copy" in _one_line_error(live)
    dropped = run(env, "projections", "copies", "drop", "--json")
    assert json.loads(dropped.stdout) == {"dropped": ["proj_api_keys__asof_1"]}
    assert run(env, "projections", "copies", "list").stdout.strip() == "no forensic copies"


def test_an_export_window_that_ends_before_it_starts_is_refused(env: dict[str, str]) -> None:
    result = run(env, "audit", "export", "--since", "2026-06-02T00:00:00Z", "--until", "2026-06-01T00:00:00Z")
    assert result.returncode == 1
    assert "is after --until" in _one_line_error(result)


@pytest.mark.skipif(POSTGRES_ADMIN_URL is None, reason="needs the PostgreSQL server")
def test_a_database_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    assert POSTGRES_ADMIN_URL is not None
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/reservekit_no_such_database"
    env = {**os.environ, "RESERVEKIT_DATABASE_URL": url, "RESERVEKIT_KEY_PEPPER": TEST_PEPPER}
    result = run(env, "keys", "list", "--account", "acct_x")
    assert result.returncode == 1
    assert 'database "reservekit_no_such_database" does not exist' in _one_line_error(result)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_prints_its_url_accepts_host_names_and_refuses_a_busy_or_bad_port(tmp_path: Path) -> None:
    env = {**os.environ, "RESERVEKIT_DATA_DIR": str(tmp_path / "data"), "RESERVEKIT_LOG_LEVEL": "WARNING"}
    env.pop("RESERVEKIT_DATABASE_URL", None)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "reservekit.cli.main", "serve", "--host", "localhost", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.strip() == f"ReserveKit key authority listening on http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                break
            except httpx.TransportError:
                time.sleep(0.1)
        busy = run(env, "serve", "--port", str(port), cwd=tmp_path)
        assert busy.returncode == 1
        assert (
            _one_line_error(busy)
            == f"reservekit: error: 127.0.0.1:{port} is already in use (another server is listening there)"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

    bad_port = run(env, "serve", "--port", "99999", cwd=tmp_path)
    assert bad_port.returncode == 2
    assert "'99999' is not a TCP port (1 to 65535)" in bad_port.stderr
    assert "Traceback" not in bad_port.stderr
    unknown = run(env, "serve", "--host", "no-such-host.invalid", cwd=tmp_path)
    assert unknown.returncode == 1
    assert "no such address or host name" in _one_line_error(unknown)
