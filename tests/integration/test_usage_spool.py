"""U1: the usage spool. A process that dies with rows in memory leaves them in its spool segment; the
next start inserts exactly the rows the database lacks, once."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.clock import SystemClock
from reservekit.usage.log import append_usage
from reservekit.usage.records import usage_log
from reservekit.usage.spool import UsageSpool
from reservekit.usage.writer import UsageWriter
from tests.integration.test_usage_log import row


async def stored_request_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        result = await conn.execute(select(usage_log.c.request_id).order_by(usage_log.c.position))
        return [r.request_id for r in result]


def crash(spool: UsageSpool) -> None:
    """What kill -9 leaves: the files stay, the process's locks go."""
    spool.close(keep=True)


async def test_rows_of_a_killed_writer_are_replayed_once(engine: AsyncEngine, tmp_path: Path) -> None:
    spool = UsageSpool(tmp_path / "spool")
    writer = UsageWriter(engine, SystemClock(), spool=spool)
    for n in range(1, 6):
        writer.record(row(n))
    await writer.flush()  # rows 1-5 reach the database; their segment is deleted
    assert list(spool.directory.iterdir()) == []
    for n in range(6, 11):
        writer.record(row(n))
    # The crash comes after rows 6-8 were inserted but before their segment was deleted.
    await append_usage(engine, [row(6), row(7), row(8)], recorded_at_us=10_000_000)
    crash(spool)
    assert len(list(spool.directory.iterdir())) == 1

    restarted = UsageWriter(engine, SystemClock(), spool=UsageSpool(tmp_path / "spool"))
    assert await restarted.replay_spool() == 2
    assert await stored_request_ids(engine) == [f"req_{n}" for n in range(1, 11)]
    assert list(spool.directory.iterdir()) == []
    assert await restarted.replay_spool() == 0


async def test_a_live_writers_segment_is_never_replayed(engine: AsyncEngine, tmp_path: Path) -> None:
    live = UsageWriter(engine, SystemClock(), spool=UsageSpool(tmp_path / "spool"))
    live.record(row(1))
    other = UsageWriter(engine, SystemClock(), spool=UsageSpool(tmp_path / "spool"))
    assert await other.replay_spool() == 0
    await live.flush()
    assert await stored_request_ids(engine) == ["req_1"]


async def test_a_torn_last_line_is_skipped(engine: AsyncEngine, tmp_path: Path) -> None:
    spool = UsageSpool(tmp_path / "spool")
    spool.append(row(1))
    spool.append(row(2))
    crash(spool)
    (segment,) = spool.directory.iterdir()
    segment.write_bytes(segment.read_bytes() + b'{"occurred_at_us": 3, "requ')
    replayed = UsageWriter(engine, SystemClock(), spool=UsageSpool(tmp_path / "spool"))
    assert await replayed.replay_spool() == 2
    assert await stored_request_ids(engine) == ["req_1", "req_2"]


async def test_rows_still_buffered_when_the_database_is_away_at_shutdown_stay_spooled(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    spool = UsageSpool(tmp_path / "spool")
    writer = UsageWriter(engine, SystemClock(), spool=spool)
    writer.record(row(1))
    await engine.dispose()

    async def away(*_args: object, **_kwargs: object) -> None:
        raise OSError("connection refused")

    writer.flush = away  # type: ignore[method-assign]
    await writer.stop(attempts=1)
    assert writer.stats.dropped == 0
    assert len(list(spool.directory.iterdir())) == 1
    restarted = UsageWriter(engine, SystemClock(), spool=UsageSpool(tmp_path / "spool"))
    assert await restarted.replay_spool() == 1
    assert await stored_request_ids(engine) == ["req_1"]


async def test_spool_files_are_private(tmp_path: Path) -> None:
    spool = UsageSpool(tmp_path / "spool")
    spool.append(row(1))
    (segment,) = spool.directory.iterdir()
    assert spool.directory.stat().st_mode & 0o777 == 0o700
    assert segment.stat().st_mode & 0o777 == 0o600
    spool.close(keep=False)
