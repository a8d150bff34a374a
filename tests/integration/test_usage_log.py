"""The usage log and its writer: append-only, batched, ordered, and nothing lost silently."""

from __future__ import annotations

import asyncio

import asyncpg
import msgspec
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from reservekit.clock import SystemClock
from reservekit.db import DatabaseUnavailable, create_engine
from reservekit.usage.log import append_usage
from reservekit.usage.records import UsageRecord, read_usage_after_in, usage_log
from reservekit.usage.writer import UsageWriter
from tests.broken_connections import assert_retried_on_another_connection, break_first_call


def row(n: int, outcome: str = "ok") -> UsageRecord:
    return UsageRecord(
        occurred_at_us=1_000_000 * n,
        request_id=f"req_{n}",
        key_id="key_a",
        account_id="acct_a",
        client_ip="203.0.113.1",
        origin=None,
        method="GET",
        route="/v1/services",
        status=200,
        outcome=outcome,
        detail=None,
        latency_us=120,
    )


async def count_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(usage_log)) or 0)


@pytest.mark.parametrize("statement", ["UPDATE usage_log SET status = 500", "DELETE FROM usage_log"])
async def test_usage_log_refuses_update_and_delete(engine: AsyncEngine, statement: str) -> None:
    await append_usage(engine, [row(1)], recorded_at_us=1)
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    assert await count_rows(engine) == 1


async def test_writer_batches_rows_with_gapless_positions(engine: AsyncEngine) -> None:
    writer = UsageWriter(engine, SystemClock(), batch_size=1000)
    for n in range(2500):
        writer.record(row(n))
    await writer.flush()
    assert writer.stats.writes == 3
    assert writer.stats.written == 2500
    async with engine.connect() as conn:
        rows = await read_usage_after_in(conn, 0, limit=5000)
    assert [r.position for r in rows] == list(range(1, 2501))
    assert [r.request_id for r in rows[:3]] == ["req_0", "req_1", "req_2"]


async def test_rows_stay_buffered_while_the_database_is_down(engine: AsyncEngine) -> None:
    writer = UsageWriter(engine, SystemClock())
    healthy = writer._engine
    writer._engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    for n in range(10):
        writer.record(row(n))
    with pytest.raises(DatabaseUnavailable):
        await writer.flush()
    assert writer.depth == 10
    assert writer.stats.failures == 1
    await writer._engine.dispose()
    writer._engine = healthy
    await writer.flush()
    assert await count_rows(engine) == 10
    assert writer.stats.dropped == 0


async def test_a_full_buffer_counts_and_logs_what_it_gives_up(engine: AsyncEngine) -> None:
    writer = UsageWriter(engine, SystemClock(), max_buffer=5)
    with capture_logs() as logs:
        for n in range(8):
            writer.record(row(n))
    assert writer.depth == 5
    assert writer.stats.dropped == 3
    assert any(entry["event"] == "usage_rows_dropped" for entry in logs)


async def test_graceful_stop_flushes_everything(engine: AsyncEngine) -> None:
    writer = UsageWriter(engine, SystemClock(), flush_interval=60)
    writer.start()
    for n in range(123):
        writer.record(row(n))
    await writer.stop()
    assert await count_rows(engine) == 123


async def test_background_writer_flushes_on_its_interval(engine: AsyncEngine) -> None:
    writer = UsageWriter(engine, SystemClock(), flush_interval=0.05)
    writer.start()
    try:
        writer.record(row(1))
        for _ in range(100):
            if await count_rows(engine) == 1:
                break
            await asyncio.sleep(0.02)
        assert await count_rows(engine) == 1
    finally:
        await writer.stop()


async def test_concurrent_writers_keep_commit_order(postgres_url: str) -> None:
    """Several replicas flushing at once: a tailing reader sees every row once, in order."""
    engines = [create_engine(postgres_url, pool_size=2) for _ in range(3)]
    reader = create_engine(postgres_url, pool_size=1)
    total = 3 * 20 * 50
    seen: list[int] = []

    async def flush_many(engine: AsyncEngine, offset: int) -> None:
        for batch in range(20):
            rows = [row(offset + batch * 50 + i) for i in range(50)]
            await append_usage(engine, rows, recorded_at_us=1)

    async def tail() -> None:
        position = 0
        while position < total:
            async with reader.connect() as conn:
                for record in await read_usage_after_in(conn, position, limit=200):
                    seen.append(record.position)
                    position = record.position
            await asyncio.sleep(0)

    try:
        tailer = asyncio.create_task(tail())
        await asyncio.gather(*(flush_many(e, i * 100_000) for i, e in enumerate(engines)))
        await asyncio.wait_for(tailer, 30)
    finally:
        for engine in (*engines, reader):
            await engine.dispose()
    assert seen == list(range(1, total + 1))


async def test_rows_arriving_during_a_flush_wait_for_the_next_one(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load a flush must not chase new rows: one write per interval, not a stream of small ones."""
    import reservekit.usage.writer as writer_module

    writer = UsageWriter(engine, SystemClock())
    real_append = writer_module.append_usage

    arrived = False

    async def append_while_requests_arrive(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal arrived
        if not arrived:
            arrived = True
            writer.record(row(999))
        return await real_append(*args, **kwargs)

    monkeypatch.setattr(writer_module, "append_usage", append_while_requests_arrive)
    writer.record(row(1))
    await writer.flush()
    assert writer.stats.writes == 1
    assert writer.depth == 1
    await writer.drain()
    assert writer.depth == 0


async def test_every_column_of_a_batch_reads_back_as_written(engine: AsyncEngine) -> None:
    """The batch reaches the driver as plain tuples (SQLite executemany, PostgreSQL COPY): the column
    order of those tuples is the table's, for every column, with and without its optional values."""
    full = msgspec.structs.replace(
        row(1, "scope_denied"), origin="https://app.example.com", detail="services:write", status=403
    )
    bare = msgspec.structs.replace(row(2), key_id=None, account_id=None, method="POST", latency_us=7)
    placed = await append_usage(engine, [full, bare], recorded_at_us=5_000_000)
    async with engine.connect() as conn:
        read = await read_usage_after_in(conn, 0)
    assert read == placed
    assert [(r.position, r.recorded_at_us) for r in read] == [(1, 5_000_000), (2, 5_000_000)]
    assert read[0] == msgspec.structs.replace(full, position=1, recorded_at_us=5_000_000)


async def test_a_batch_on_a_connection_a_restart_cut_is_unavailable_not_an_unknown_error(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL takes the batch by COPY on the driver's connection, outside SQLAlchemy's error
    wrapping: a dead connection must still surface as DatabaseUnavailable (the writer keeps the rows
    and retries) and leave the pool, so the retry runs on a fresh connection and lands."""
    engine = create_engine(postgres_url)
    calls = break_first_call(
        monkeypatch,
        "copy_records_to_table",
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    )
    writer = UsageWriter(engine, SystemClock())
    try:
        for n in range(3):
            writer.record(row(n))
        with pytest.raises(DatabaseUnavailable):
            await writer.flush()
        assert writer.depth == 3
        await writer.flush()
        assert await count_rows(engine) == 3
    finally:
        await engine.dispose()
    assert_retried_on_another_connection(calls)


async def test_a_batch_postgresql_refuses_is_a_database_error_the_writer_retries(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(postgres_url)
    writer = UsageWriter(engine, SystemClock())
    try:
        writer.record(msgspec.structs.replace(row(1), latency_us=2**40))  # outside the integer column
        with pytest.raises(DBAPIError, match="COPY usage_log"):
            await writer.flush()
        assert writer.depth == 1
        assert writer.stats.failures == 1
        assert await count_rows(engine) == 0
    finally:
        await engine.dispose()
