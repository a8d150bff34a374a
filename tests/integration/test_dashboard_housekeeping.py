"""Expired dashboard sessions and old spent-form rows are deleted; a purged form still cannot be replayed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.clock import FakeClock, to_micros
from reservekit.members.directory import (
    SqlMemberDirectory,
    dashboard_sessions,
    dashboard_spent_forms,
    new_form_id,
)
from reservekit.runtime import Runtime
from reservekit.settings import Settings

IDLE_S, LIFETIME_S = 3600, 12 * 3600


def directory_on(engine: AsyncEngine, clock: FakeClock) -> SqlMemberDirectory:
    return SqlMemberDirectory(engine, clock, idle_us=IDLE_S * 1_000_000, lifetime_us=LIFETIME_S * 1_000_000)


async def rows(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


async def test_purge_deletes_only_idle_or_too_old_sessions_and_old_spent_forms(engine: AsyncEngine) -> None:
    clock = FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    directory = directory_on(engine, clock)
    old_form = new_form_id(to_micros(clock.now()))
    assert await directory.spend_form(old_form)
    left_idle = await directory.open_session("mem_idle", "acct_a")
    kept_busy = await directory.open_session("mem_busy", "acct_a")
    for _ in range(12):  # the busy one is seen every hour: never idle...
        clock.advance(IDLE_S - 1)
        assert await directory.session(kept_busy) is not None
    clock.advance(100)  # ...and now past its lifetime, though seen 100 s ago
    fresh = await directory.open_session("mem_fresh", "acct_a")
    new_form = new_form_id(to_micros(clock.now()))
    assert await directory.spend_form(new_form)

    assert await directory.purge_expired() == (2, 1)  # idle + past lifetime; the 12-hour-old form
    assert await rows(engine, dashboard_sessions) == 1
    assert await directory.session(fresh) is not None
    assert await directory.session(left_idle) is None
    assert await rows(engine, dashboard_spent_forms) == 1
    assert await directory.purge_expired() == (0, 0)


async def test_a_form_older_than_a_session_may_last_is_refused_even_once_its_row_is_purged(
    engine: AsyncEngine,
) -> None:
    clock = FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    directory = directory_on(engine, clock)
    issued = new_form_id(to_micros(clock.now()))
    never_sent = new_form_id(to_micros(clock.now()))
    clock.advance(60)
    assert await directory.spend_form(issued)
    assert not await directory.spend_form(issued)  # a replay
    clock.advance(LIFETIME_S + 1)
    assert await directory.purge_expired() == (0, 1)
    assert not await directory.spend_form(issued)  # its row is gone; its age still refuses it
    assert not await directory.spend_form(never_sent)  # first sent after a session's lifetime
    assert not await directory.spend_form("not-a-form-id")
    future = new_form_id(to_micros(clock.now()) + 3_600_000_000)
    assert not await directory.spend_form(future)


async def test_the_worker_purges_at_start_and_a_server_without_it_does_not(settings: Settings) -> None:
    clock = FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    seeded = Runtime.build(settings, clock=clock)
    await seeded.start(background=False)
    assert seeded.members is not None
    await seeded.members.open_session("mem_gone", "acct_a")
    await seeded.stop()
    clock.advance(LIFETIME_S + 1)

    serving_only = Runtime.build(settings, clock=clock)
    await serving_only.start(work=False)
    await asyncio.sleep(0.2)
    assert await rows(serving_only.engine, dashboard_sessions) == 1
    await serving_only.stop()

    worker = Runtime.build(settings, clock=clock)
    await worker.start(work=True)
    try:
        for _ in range(100):
            if await rows(worker.engine, dashboard_sessions) == 0:
                break
            await asyncio.sleep(0.05)
        assert await rows(worker.engine, dashboard_sessions) == 0
    finally:
        await worker.stop()
