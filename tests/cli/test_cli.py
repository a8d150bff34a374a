"""The ``reservekit`` command as a user runs it: a real process, real exit codes, both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from reservekit.db import create_engine
from tests.conftest import TEST_PEPPER


def run(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reservekit.cli.main", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RESERVEKIT_DATABASE_URL": database_url,
        "RESERVEKIT_KEY_PEPPER": TEST_PEPPER,
        "RESERVEKIT_DATA_DIR": str(tmp_path / "data"),
    }


def test_accounts_create_operator_json_and_the_log_verifies(env: dict[str, str], database_url: str) -> None:
    created = run(env, "accounts", "create", "--name", "Ops", "--operator", "--json")
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert body["account"]["id"].startswith("acct_")
    assert body["account"] | {"id": None} == {
        "id": None,
        "name": "Ops",
        "plan": "free",
        "operator": True,
        "created_at": body["account"]["created_at"],
    }
    assert body["key"]["id"].startswith("key_")
    assert body["key"]["secret"].startswith("sk_rsv_")
    assert "platform:admin" in body["key"]["scopes"]

    verified = run(env, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "2 events" in verified.stdout

    rebuilt = run(env, "projections", "rebuild", "--verify")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "matches live" in rebuilt.stderr

    status = run(env, "projections", "status")
    assert status.returncode == 0
    assert any(
        line.split()[:1] == ["api_keys"] and line.split()[-1] == "0" for line in status.stdout.splitlines()
    )


async def test_audit_verify_exits_1_naming_the_tampered_position(
    env: dict[str, str], database_url: str
) -> None:
    for name in ("A", "B"):
        assert run(env, "accounts", "create", "--name", name).returncode == 0
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(text("DROP TRIGGER events_no_update"))
        else:
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
        await conn.execute(text('UPDATE events SET metadata = \'{"source":"forged"}\' WHERE position = 3'))
    await engine.dispose()
    verified = run(env, "audit", "verify")
    assert verified.returncode == 1
    assert "position 3" in verified.stdout


async def _table_rows(database_url: str, *tables: str) -> dict[str, list[tuple[object, ...]]]:
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        rows = {}
        for table in tables:
            result = await conn.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
            rows[table] = sorted(map(tuple, result.all()))
    await engine.dispose()
    return rows


async def test_audit_verify_never_replays_a_tampered_log_into_projections(
    env: dict[str, str], database_url: str
) -> None:
    """T1: a forged plan change after the head must be reported, not applied to ``proj_accounts``."""
    created = run(env, "accounts", "create", "--name", "A", "--json")
    account = json.loads(created.stdout)["account"]["id"]
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        head = (await conn.execute(text("SELECT position, hash FROM events ORDER BY position DESC"))).first()
        assert head is not None
        await conn.execute(
            text(
                "INSERT INTO events (position, stream_id, stream_version, account_id, type, data, metadata,"
                " recorded_at_us, prev_hash, hash) VALUES (:p, :a, 2, :a, 'account_plan_changed', :d, '{}',"
                " 1, :prev, :forged)"
            ),
            {
                "p": head.position + 1,
                "a": account,
                "d": json.dumps({"account_id": account, "plan": "enterprise"}),
                "prev": head.hash,
                "forged": "f" * 64,
            },
        )
    await engine.dispose()
    tables = ("proj_accounts", "proj_api_keys", "projection_checkpoints")
    before = await _table_rows(database_url, *tables)
    verified = run(env, "audit", "verify")
    assert verified.returncode == 1, verified.stderr
    assert f"position {head.position + 1}" in verified.stdout
    assert await _table_rows(database_url, *tables) == before


@pytest.mark.parametrize("moved", [1, 2])
async def test_audit_verify_names_a_moved_position_without_a_traceback(
    env: dict[str, str], database_url: str, moved: int
) -> None:
    assert run(env, "accounts", "create", "--name", "A").returncode == 0
    assert run(env, "accounts", "create", "--name", "B").returncode == 0
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(text("DROP TRIGGER events_no_update"))
        else:
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
        await conn.execute(
            text("UPDATE events SET position = position + 1000 WHERE position = :p"), {"p": moved}
        )
    await engine.dispose()
    verified = run(env, "audit", "verify")
    assert (verified.returncode, verified.stderr) == (1, "")
    assert verified.stdout.startswith(f"chain BROKEN at position {moved}:")


def test_audit_verify_of_a_missing_database_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESERVEKIT_")}
    verified = run(env, "audit", "verify", cwd=tmp_path)
    assert verified.returncode == 1
    assert "there is no database" in verified.stderr
    assert "Traceback" not in verified.stderr
    assert not (tmp_path / ".reservekit" / "reservekit.db").exists()


def test_user_mistakes_print_one_line_and_exit_non_zero(env: dict[str, str]) -> None:
    bad_plan = run(env, "accounts", "create", "--name", "X", "--plan", "platinum")
    assert bad_plan.returncode == 1
    assert bad_plan.stderr.strip().count("\n") == 0
    assert "unknown plan 'platinum'" in bad_plan.stderr
    assert "Traceback" not in bad_plan.stderr
    missing = run(env, "keys", "revoke", "key_doesnotexist")
    assert missing.returncode == 1
    assert "not found" in missing.stderr
    assert "Traceback" not in missing.stderr
    unknown = run(env, "projections", "rebuild", "nope")
    assert unknown.returncode == 1
    assert "no projection named 'nope'" in unknown.stderr


def test_embedded_default_creates_its_database_and_pepper_on_first_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESERVEKIT_")}
    created = run(env, "accounts", "create", "--name", "Laptop", "--json", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    data = tmp_path / ".reservekit"
    assert (data / "reservekit.db").exists()
    assert (data / "pepper").stat().st_mode & 0o777 == 0o600
    assert run(env, "audit", "verify", cwd=tmp_path).returncode == 0


def test_the_embedded_data_is_private_to_its_user(tmp_path: Path) -> None:
    """S3: under the usual umask 022 the data directory is 0700 and every file in it 0600."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESERVEKIT_")}
    created = subprocess.run(
        ["sh", "-c", f'umask 022 && exec "{sys.executable}" -m reservekit.cli.main accounts create --name P'],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    data = tmp_path / ".reservekit"
    assert data.stat().st_mode & 0o777 == 0o700
    files = {p.name: p.stat().st_mode & 0o777 for p in data.iterdir()}
    assert {"reservekit.db", "pepper"} <= files.keys()
    assert files == dict.fromkeys(files, 0o600), files


def test_migrate_upgrades_the_configured_database(env: dict[str, str]) -> None:
    migrated = run(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "to head" in migrated.stdout


def test_webhooks_create_list_deliveries_and_delete(env: dict[str, str]) -> None:
    env = {**env, "RESERVEKIT_WEBHOOKS_ALLOW_LOOPBACK": "true"}
    account = json.loads(run(env, "accounts", "create", "--name", "Hooked", "--json").stdout)["account"]["id"]
    refused = run(
        env,
        "webhooks",
        "create",
        "--account",
        account,
        "--url",
        "https://10.0.0.1/",
        "--event-type",
        "key.created",
    )
    assert refused.returncode == 1
    assert "url" in refused.stderr
    assert "Traceback" not in refused.stderr
    created = run(
        env, "webhooks", "create", "--account", account, "--url", "http://127.0.0.1:9/in",
        "--event-type", "key.created", "--event-type", "leak.reported", "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    endpoint = json.loads(created.stdout)
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["event_types"] == ["key.created", "leak.reported"]
    listed = json.loads(run(env, "webhooks", "list", "--account", account, "--json").stdout)
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0]
    assert run(env, "keys", "create", "--account", account, "--name", "k").returncode == 0
    sent = run(env, "webhooks", "deliveries", endpoint["id"], "--json")
    assert sent.returncode == 0, sent.stderr
    [delivery] = json.loads(sent.stdout)  # queued by the command's final catch-up, not yet sent
    assert delivery["event_type"] == "key.created"
    deleted = run(env, "webhooks", "delete", endpoint["id"])
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(run(env, "webhooks", "list", "--account", account, "--json").stdout) == []
    gone = run(env, "webhooks", "deliveries", endpoint["id"])
    assert gone.returncode == 1
    assert "not found" in gone.stderr


def test_members_add_lets_a_person_sign_in_when_sign_up_is_closed(env: dict[str, str]) -> None:
    created = run(env, "accounts", "create", "--name", "Closed Co", "--json")
    account_id = json.loads(created.stdout.splitlines()[-1])["account"]["id"]  # after any log lines
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "reservekit.cli.main",
            "members",
            "add",
            "--account",
            account_id,
            "--email",
            "Ops@Example.com",
            "--password-stdin",
        ],
        env={**env, "RESERVEKIT_SIGNUP": "closed"},
        input="a long enough passphrase\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    assert "ops@example.com" in added.stdout
    short = subprocess.run(
        [
            sys.executable,
            "-m",
            "reservekit.cli.main",
            "members",
            "add",
            "--account",
            account_id,
            "--email",
            "two@example.com",
            "--password-stdin",
        ],
        env=env,
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert short.returncode == 1
    assert "at least 12 characters" in short.stderr
    verified = run(env, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "3 events" in verified.stdout  # account_opened, key_created, member_added; no password


def test_serve_banner_names_the_dashboard() -> None:
    from reservekit.cli.serve import dashboard_banner

    assert dashboard_banner("http://127.0.0.1:8000", signup_open=True) == (
        "Dashboard: http://127.0.0.1:8000/dashboard (sign up there to get a key)"
    )
    assert "members add" in dashboard_banner("http://127.0.0.1:8000", signup_open=False)


def test_members_add_gives_the_member_a_role(env: dict[str, str]) -> None:
    created = run(env, "accounts", "create", "--name", "Roles Co", "--json")
    account_id = json.loads(created.stdout.splitlines()[-1])["account"]["id"]
    command = [sys.executable, "-m", "reservekit.cli.main", "members", "add", "--account", account_id]
    added = subprocess.run(
        [*command, "--email", "audit@example.com", "--role", "auditor", "--password-stdin", "--json"],
        env=env,
        input="a long enough passphrase\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout.splitlines()[-1])["role"] == "auditor"
    refused = subprocess.run(
        [*command, "--email", "root@example.com", "--role", "root", "--password-stdin"],
        env=env,
        input="a long enough passphrase\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2  # argparse: not one of the roles
    assert "invalid choice" in refused.stderr


async def test_rebuild_replays_one_projection_without_catching_the_others_up(
    env: dict[str, str], database_url: str
) -> None:
    """The rebuild swaps in its own projection at the head; the others' checkpoints stay put (the
    command used to catch every live projection up first, minutes on a long usage log)."""
    created = run(env, "accounts", "create", "--name", "Ops", "--json")
    assert created.returncode == 0, created.stderr
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE projection_checkpoints SET position = 0"))
    rebuilt = run(env, "projections", "rebuild", "api_keys")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "/s" in rebuilt.stderr  # the progress bar shows its rate
    async with engine.connect() as conn:
        positions = dict(
            (await conn.execute(text("SELECT name, position FROM projection_checkpoints"))).all()
        )
    await engine.dispose()
    assert positions["api_keys"] == 2
    assert positions["accounts"] == 0
