"""The key view's cursor never passes an event it has not applied (issue 16).

Two replicas share one database. The interleavings that lost revocations are forced step by step:
no background tasks run, and each test calls what the tailer would call, when it would call it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from reservekit.auth import key_view as key_view_module
from reservekit.domain.accounts import AccountState
from reservekit.domain.events import Metadata
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.usecases.commands import ChangePlan, CreateKey, IssuedKey, OpenAccount, RevokeKey, RotateKey
from tests.integration.conftest import authenticate

CLI = Metadata(source="cli")


async def open_account(runtime: Runtime) -> tuple[AccountState, IssuedKey]:
    opened = await runtime.application.execute(OpenAccount(name="Acme"), CLI)
    return opened.account, opened.first_key


async def create_key(runtime: Runtime, account_id: str, name: str) -> IssuedKey:
    return await runtime.application.execute(CreateKey(account_id=account_id, name=name), CLI)


async def change_plan(runtime: Runtime, account_id: str, plan: str) -> None:
    await runtime.application.execute(ChangePlan(account_id=account_id, plan=plan), CLI)


async def _revoke(a: Runtime, account_id: str, key_id: str) -> None:
    await a.application.execute(RevokeKey(account_id=account_id, key_id=key_id, reason="test"), CLI)


async def _rotate(a: Runtime, account_id: str, key_id: str) -> None:
    await a.application.execute(RotateKey(account_id=account_id, key_id=key_id, grace_period_seconds=0), CLI)


@pytest.mark.parametrize(
    ("write_on_a", "refusal"), [(_revoke, "revoked"), (_rotate, "expired")], ids=["revoke", "rotate"]
)
async def test_a_replica_appending_right_after_another_still_applies_the_others_event(
    replicas: tuple[Runtime, Runtime],
    write_on_a: Callable[[Runtime, str, str], Any],
    refusal: str,
) -> None:
    a, b = replicas
    account, issued = await open_account(a)
    assert (await authenticate(b, issued.secret)).outcome == "ok"  # B now holds the key in memory
    before = b.key_view.position

    await write_on_a(a, account.account_id, issued.key.key_id)  # position p, on A
    await create_key(b, account.account_id, "other")  # p + 1, on B

    # B's own append does not follow B's cursor, so the cursor stays where B's tailer left it ...
    assert b.key_view.position == before
    # ... and the tailer's next read (a wake-up or a poll) brings A's event.
    await b.key_view.catch_up()
    assert (await authenticate(b, issued.secret)).outcome == refusal
    assert b.key_view.mismatches == 0


async def test_a_plan_change_written_elsewhere_is_not_skipped_either(
    replicas: tuple[Runtime, Runtime],
) -> None:
    a, b = replicas
    account, issued = await open_account(a)
    assert (await authenticate(b, issued.secret)).outcome == "ok"
    assert b.key_view.plan_of(account.account_id) == "free"

    await change_plan(a, account.account_id, "pro")
    await create_key(b, account.account_id, "other")
    await b.key_view.catch_up()

    assert b.key_view.plan_of(account.account_id) == "pro"


async def test_own_appends_that_follow_on_move_the_cursor(replicas: tuple[Runtime, Runtime]) -> None:
    a, _ = replicas
    account, _issued = await open_account(a)
    assert a.key_view.position == await a.store.head()
    await create_key(a, account.account_id, "next")
    assert a.key_view.position == await a.store.head()


async def test_a_revocation_written_while_a_miss_reads_the_key_holds_for_the_next_request(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A miss folds the key from a snapshot taken before this replica's own revocation committed."""
    b = Runtime.build(settings)
    await b.start(background=False)
    account, _ = await open_account(b)
    issued = await create_key(b, account.account_id, "k")
    a = Runtime.build(settings)  # starts after the key exists: its first use is a miss on A
    await a.start(background=False)

    real_read = key_view_module.read_stream_in
    folded, proceed = asyncio.Event(), asyncio.Event()

    async def read_then_wait(conn: Any, stream_id: str) -> Any:
        history = await real_read(conn, stream_id)
        if stream_id == issued.key.key_id:
            folded.set()
            await proceed.wait()
        return history

    monkeypatch.setattr(key_view_module, "read_stream_in", read_then_wait)
    first_use = asyncio.create_task(authenticate(a, issued.secret))
    await folded.wait()
    await _revoke(a, account.account_id, issued.key.key_id)  # on A, while A's miss holds an older fold
    proceed.set()
    assert (await first_use).outcome in {"ok", "revoked"}  # it raced the revocation: either answer is fair
    assert (await authenticate(a, issued.secret)).outcome == "revoked"
    await a.stop()
    await b.stop()


async def test_an_own_append_during_a_catch_up_neither_moves_the_cursor_nor_looks_like_a_gap(
    replicas: tuple[Runtime, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = replicas
    account, _ = await open_account(a)
    start = a.key_view.position
    real_read = key_view_module.read_after_in
    reading, proceed = asyncio.Event(), asyncio.Event()

    async def wait_then_read(conn: Any, position: int, **kwargs: Any) -> Any:
        reading.set()
        await proceed.wait()
        return await real_read(conn, position, **kwargs)

    monkeypatch.setattr(key_view_module, "read_after_in", wait_then_read)
    catching_up = asyncio.create_task(a.key_view.catch_up())
    await reading.wait()
    await create_key(a, account.account_id, "during")
    assert a.key_view.position == start
    proceed.set()
    monkeypatch.setattr(key_view_module, "read_after_in", real_read)
    await catching_up
    assert a.key_view.position == start + 1
    assert a.key_view.mismatches == 0


async def test_a_plan_read_from_an_older_snapshot_never_replaces_a_newer_plan(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = Runtime.build(settings)
    await b.start(background=False)
    account, _ = await open_account(b)
    a = Runtime.build(settings)  # has never seen the account: its plan is read on demand
    await a.start(background=False)
    real_read = key_view_module.read_stream_in
    read, proceed = asyncio.Event(), asyncio.Event()

    async def read_then_wait(conn: Any, stream_id: str) -> Any:
        history = await real_read(conn, stream_id)
        read.set()
        await proceed.wait()
        return history

    monkeypatch.setattr(key_view_module, "read_stream_in", read_then_wait)
    resolving = asyncio.create_task(a.key_view.resolve_plan(account.account_id))
    await read.wait()
    await change_plan(a, account.account_id, "pro")
    proceed.set()
    await resolving
    assert a.key_view.plan_of(account.account_id) == "pro"
    await a.stop()
    await b.stop()
