"""Boundaries the mutation run found unguarded (issue 16, item 4).

- "as of T" includes an event recorded exactly at T, for key states and for rebuilds;
- a rotation's grace end never extends an earlier ``expires_at`` (the domain and the key view);
- ``rebuild --verify`` reports rows that exist only in the live tables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import insert

from projections import api_keys
from reservekit.audit.as_of import keys_as_of
from reservekit.clock import FakeClock
from reservekit.domain.events import Metadata
from reservekit.projecting.rebuild import position_as_of, rebuild_into
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from tests.cli.test_cli import run
from tests.conftest import TEST_PEPPER
from tests.writes import create_key, open_account, revoke_key, rotate_key

CLI = Metadata(source="cli")
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[tuple[Runtime, FakeClock]]:
    clock = FakeClock(T0)
    built = Runtime.build(settings, clock=clock)
    await built.start(background=False)
    yield built, clock
    await built.stop()


async def test_keys_as_of_the_very_instant_of_a_revocation_include_it(
    runtime: tuple[Runtime, FakeClock],
) -> None:
    rt, clock = runtime
    account, issued = await open_account(rt, name="Acme", metadata=CLI)
    clock.advance(300)
    revoked_at = clock.now()
    await revoke_key(rt, account_id=account.account_id, key_id=issued.key.key_id, reason=None, metadata=CLI)

    at = {s.key_id: s for s in await keys_as_of(rt.engine, revoked_at, account_id=account.account_id)}
    before = {
        s.key_id: s
        for s in await keys_as_of(rt.engine, revoked_at - MICROSECOND, account_id=account.account_id)
    }

    assert at[issued.key.key_id].status(revoked_at) == "revoked"
    assert before[issued.key.key_id].status(revoked_at - MICROSECOND) == "active"


async def test_a_rebuild_as_of_the_very_instant_of_an_event_includes_it(
    runtime: tuple[Runtime, FakeClock],
) -> None:
    rt, clock = runtime
    account, issued = await open_account(rt, name="Acme", metadata=CLI)
    clock.advance(300)
    revoked_at = clock.now()
    await revoke_key(rt, account_id=account.account_id, key_id=issued.key.key_id, reason=None, metadata=CLI)
    head = await rt.store.head()

    assert await position_as_of(rt.engine, api_keys.PROJECTION, revoked_at) == head
    assert await position_as_of(rt.engine, api_keys.PROJECTION, revoked_at - MICROSECOND) == head - 1
    result = await rebuild_into(rt.engine, api_keys.PROJECTION, suffix="__asof_test", until=head)
    assert result.until_position == head
    # The key's creation and its revocation; the account's opening is not an event api_keys folds.
    assert result.events_applied == 2


async def test_a_rotation_never_extends_an_earlier_expiry(
    runtime: tuple[Runtime, FakeClock], settings: Settings
) -> None:
    rt, _ = runtime
    account, _ = await open_account(rt, name="Acme", metadata=CLI)
    expires = T0 + timedelta(hours=1)
    issued = await create_key(
        rt, account_id=account.account_id, name="short", expires_at=expires, metadata=CLI
    )
    other = Runtime.build(settings)  # another replica that holds the key and tails the rotation
    await other.start(background=False)
    try:
        assert other.key_view.get(other.application.deps.hasher.digest(issued.secret)) is None
        await other.key_view.resolve(other.application.deps.hasher.digest(issued.secret))

        old, _new = await rotate_key(
            rt,
            account_id=account.account_id,
            key_id=issued.key.key_id,
            grace_period_seconds=604_800,
            metadata=CLI,
        )
        await other.key_view.catch_up()

        assert old.expires_at == expires  # the domain's fold
        for view in (rt.key_view, other.key_view):  # own append, and the tailer
            entry = view.get(rt.application.deps.hasher.digest(issued.secret))
            assert entry is not None
            assert entry.rotated
            assert entry.expires_at == expires.timestamp()
    finally:
        await other.stop()


async def test_rebuild_verify_exits_1_naming_a_row_forged_into_the_live_table(
    database_url: str, tmp_path: Path, settings: Settings
) -> None:
    rt = Runtime.build(msgspec.structs.replace(settings))
    await rt.start(background=False)
    try:
        await open_account(rt, name="Acme", metadata=CLI)
        await rt.refresh_projections()
        keys = api_keys.PROJECTION.live.keys
        async with rt.engine.begin() as conn:
            await conn.execute(
                insert(keys).values(
                    key_id="key_forged",
                    account_id="acct_forged",
                    key_hash="f" * 64,
                    prefix="sk_rsv_ABCD",
                    last4="WXYZ",
                    name="forged",
                    domains="[]",
                    scopes='["keys:write"]',
                    created_at_us=0,
                    version=1,
                    position=1,
                )
            )
    finally:
        await rt.stop()
    env = {
        "RESERVEKIT_DATABASE_URL": database_url,
        "RESERVEKIT_KEY_PEPPER": TEST_PEPPER,
        "RESERVEKIT_DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
    }
    verified = run(env, "projections", "rebuild", "api_keys", "--verify")
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert "live only" in verified.stderr + verified.stdout
    assert "key_forged" in verified.stderr + verified.stdout
