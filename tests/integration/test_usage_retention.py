"""Usage retention on both backends: whole days dropped, the rest still append-only, each pass an event."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from projections import key_usage
from reservekit.clock import DAY_US
from reservekit.db import create_engine, read_transaction
from reservekit.events.store import SqlEventStore
from reservekit.events.verify import verify_chain
from reservekit.usage.log import append_usage
from reservekit.usage.records import UsageRecord, usage_log, usage_retention
from reservekit.usage.retention import RETENTION_STREAM, apply_retention, ensure_partitions, partitions

NOW = 1_780_000_000_000_000 - 1_780_000_000_000_000 % DAY_US + 12 * 3_600_000_000  # noon, UTC


def record(n: int, at_us: int, key_id: str = "key_a", outcome: str = "ok") -> UsageRecord:
    return UsageRecord(occurred_at_us=at_us, request_id=f"req_{n}", key_id=key_id, account_id="acct_a",
                       client_ip="203.0.113.1", origin=None, method="GET", route="/v1/services", status=200,
                       outcome=outcome, detail=None, latency_us=120)  # fmt: skip


async def fill(engine: AsyncEngine, days_ago: list[int], per_day: int = 3) -> None:
    """``per_day`` rows recorded on each of ``days_ago`` (oldest first, so positions follow time)."""
    await ensure_partitions(engine, NOW - max(days_ago) * DAY_US, ahead_days=max(days_ago) + 1)
    n = 0
    for ago in sorted(days_ago, reverse=True):
        at = NOW - ago * DAY_US
        batch = [record(n + i, at + i) for i in range(per_day)]
        n += per_day
        await append_usage(engine, batch, recorded_at_us=at)


async def recorded(engine: AsyncEngine) -> list[int]:
    async with read_transaction(engine) as conn:
        return [
            int(v)
            for v in await conn.scalars(select(usage_log.c.recorded_at_us).order_by(usage_log.c.position))
        ]


async def test_retention_drops_whole_days_before_the_boundary_and_records_an_event(
    engine: AsyncEngine, store: SqlEventStore
) -> None:
    await fill(engine, [95, 91, 90, 89, 2])
    result = await apply_retention(engine, store, now_us=NOW, days=90)

    boundary = NOW - NOW % DAY_US - 90 * DAY_US
    assert result is not None
    assert (result.boundary_us, result.rows, result.through_position) == (boundary, 6, 6)
    assert all(at >= boundary for at in await recorded(engine))
    assert len(await recorded(engine)) == 9  # 90, 89 and 2 days ago: the 90th day is inside the window
    [event] = await store.read_stream(RETENTION_STREAM)
    assert event.type == "usage_retention_applied"
    assert (event.data.rows, event.data.through_position, event.data.retention_days) == (6, 6, 90)  # type: ignore[union-attr]
    assert (await verify_chain(engine)).ok
    async with read_transaction(engine) as conn:
        assert (await conn.execute(select(usage_retention.c.boundary_us, usage_retention.c.rows))).all() == [
            (boundary, 6)
        ]
    # A second pass the same day has nothing to drop and writes no event.
    assert await apply_retention(engine, store, now_us=NOW + 3_600_000_000, days=90) is None
    assert len(await store.read_stream(RETENTION_STREAM)) == 1


async def test_what_is_kept_stays_append_only(engine: AsyncEngine, store: SqlEventStore) -> None:
    await fill(engine, [100, 1])
    assert await apply_retention(engine, store, now_us=NOW, days=90) is not None
    for statement in (
        "DELETE FROM usage_log",
        "UPDATE usage_log SET status = 500",
        "DELETE FROM usage_retention",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
    assert len(await recorded(engine)) == 3


async def test_postgres_drops_partitions_and_creates_them_ahead(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    store = SqlEventStore(engine)
    try:
        await fill(engine, [93, 92, 1])
        await ensure_partitions(engine, NOW)
        async with engine.connect() as conn:
            before = await partitions(conn)
        assert {"usage_log_p20260224", "usage_log_p20260225"} <= set(before)  # 93 and 92 days before NOW
        assert await apply_retention(engine, store, now_us=NOW, days=90) is not None
        async with engine.connect() as conn:
            after = await partitions(conn)
            in_default = await conn.scalar(text("SELECT count(*) FROM usage_log_default"))
        assert "usage_log_p20260224" not in after
        assert "usage_log_p20260225" not in after
        assert {f"usage_log_p202605{d}" for d in ("28", "29", "30", "31")} <= set(after)  # today and 3 ahead
        assert in_default == 0
        assert len(await recorded(engine)) == 3
    finally:
        await engine.dispose()


async def test_the_per_minute_rollup_equals_the_raw_counts(engine: AsyncEngine) -> None:
    """The usage views read the per-minute rollup; it must count exactly what the raw log holds."""
    rows = [record(n, NOW + n * 7_000_000, key_id=f"key_{n % 3}", outcome=("ok", "rate_limited")[n % 2])
            for n in range(50)]  # fmt: skip
    rows = await append_usage(engine, rows, recorded_at_us=NOW)
    tables = key_usage.PROJECTION.tables("__check")
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: tables[0].metadata.create_all(sync))
        await key_usage.apply(conn, tables, rows[:20])  # two batches, as the runner would cut them
        await key_usage.apply(conn, tables, rows[20:])
        minute = (usage_log.c.occurred_at_us - usage_log.c.occurred_at_us % 60_000_000).label("m")
        raw = (
            await conn.execute(
                select(usage_log.c.key_id, minute, usage_log.c.outcome, func.count()).group_by(
                    usage_log.c.key_id, minute, usage_log.c.outcome
                )
            )
        ).all()
        rolled = (await conn.execute(select(*tables.minutes.columns))).all()
    assert sorted(map(tuple, raw)) == sorted(map(tuple, rolled))
