"""Usage retention: day partitions created ahead, rows older than the retention window dropped.

On PostgreSQL ``usage_log`` is range-partitioned by UTC day on ``recorded_at_us`` (migration 0009):
``ensure_partitions`` creates today's and the next few days' partitions, and retention drops every
partition that ends at or before the boundary — a catalog operation, however many rows it held. Rows
in the DEFAULT partition (moved there by the migration) are deleted by range. On SQLite it is one
``DELETE … WHERE recorded_at_us < boundary``.

The log stays append-only for what is kept: the database refuses DELETE of any row recorded at or
after the latest boundary in ``usage_retention`` (itself append-only), and each retention pass is
recorded as a ``usage_retention_applied`` lifecycle event in the same transaction as the drop.
Boundaries are whole UTC days and only move forward; every replica may run the loop: the usage lock
serialises passes and the second finds nothing to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reservekit.background import PeriodicTask
from reservekit.clock import DAY_US, Clock, from_micros, to_micros
from reservekit.db import DatabaseUnavailable, is_sqlite, read_transaction, write_transaction
from reservekit.domain.events import Metadata, UsageRetentionApplied
from reservekit.events.store import SqlEventStore
from reservekit.usage.log import USAGE_LOCK_KEY
from reservekit.usage.records import usage_log, usage_retention
from reservekit.usecases.ports import ConcurrencyConflict, StreamWrite

log = structlog.get_logger(__name__)
RETENTION_STREAM = "usage-retention"
SYSTEM_ACCOUNT = "system"
PARTITIONS_AHEAD_DAYS = 3
_PARTITION = re.compile(r"usage_log_p(\d{8})")


@dataclass(frozen=True)
class RetentionResult:
    boundary_us: int
    through_position: int
    rows: int


def day_start(micros: int) -> int:
    return micros - micros % DAY_US


def partition_name(day_us: int) -> str:
    return "usage_log_p" + from_micros(day_us).strftime("%Y%m%d")


async def ensure_partitions(
    engine: AsyncEngine, now_us: int, *, ahead_days: int = PARTITIONS_AHEAD_DAYS
) -> None:
    """PostgreSQL: today's partition and the next ``ahead_days`` days' (SQLite has none)."""
    async with write_transaction(engine) as conn:
        if is_sqlite(conn):
            return
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": USAGE_LOCK_KEY})
        existing = set(await partitions(conn))
        for offset in range(ahead_days + 1):
            start = day_start(now_us) + offset * DAY_US
            name = partition_name(start)
            if name in existing:
                continue
            await conn.execute(
                text(
                    f'CREATE TABLE "{name}" PARTITION OF usage_log '
                    f"FOR VALUES FROM ({int(start)}) TO ({int(start + DAY_US)})"
                )
            )


async def partitions(conn: AsyncConnection) -> list[str]:
    """The day partitions of ``usage_log`` (not the default one), oldest first."""
    result = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'usage_log'"
        )
    )
    return sorted(str(name) for (name,) in result if _PARTITION.fullmatch(str(name)))


class _NothingToDrop(Exception):
    pass


async def apply_retention(
    engine: AsyncEngine, store: SqlEventStore, *, now_us: int, days: int
) -> RetentionResult | None:
    """Drop usage rows recorded before ``day_start(now) - days``; None when there is nothing to drop."""
    boundary = day_start(now_us) - days * DAY_US
    outcome: list[RetentionResult] = []

    async def drop(conn: AsyncConnection) -> None:
        if not is_sqlite(conn):
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": USAGE_LOCK_KEY})
        previous = int(
            await conn.scalar(select(func.coalesce(func.max(usage_retention.c.boundary_us), -1))) or -1
        )
        if boundary <= previous:
            raise _NothingToDrop
        rows, through = await _rows_below(conn, boundary)
        if not rows:
            raise _NothingToDrop
        await conn.execute(
            insert(usage_retention).values(
                boundary_us=boundary,
                through_position=through,
                rows=rows,
                retention_days=days,
                applied_at_us=now_us,
            )
        )
        if not is_sqlite(conn):
            for name in await partitions(conn):
                day = to_micros_of_partition(name)
                if day + DAY_US <= boundary:
                    await conn.execute(text(f'DROP TABLE "{name}"'))
        # SQLite's table, and PostgreSQL's default partition: the trigger allows DELETE below the boundary.
        await conn.execute(usage_log.delete().where(usage_log.c.recorded_at_us < boundary))
        outcome.append(RetentionResult(boundary, through, rows))

    # Rows below the boundary were recorded at least a day ago: no append adds more, so counting here,
    # before the transaction, gives the event the same figures ``drop`` writes to ``usage_retention``.
    async with read_transaction(engine) as conn:
        rows, through = await _rows_below(conn, boundary)
    if not rows:
        return None
    version = len(await store.read_stream(RETENTION_STREAM))
    event = UsageRetentionApplied(
        account_id=SYSTEM_ACCOUNT,
        boundary=from_micros(boundary),
        through_position=through,
        rows=rows,
        retention_days=days,
    )
    try:
        await store.append(
            [StreamWrite(RETENTION_STREAM, version, [event])], Metadata(source="retention"), along=drop
        )
    except (_NothingToDrop, ConcurrencyConflict):  # another replica's pass got there first
        return None
    return outcome[0]


def to_micros_of_partition(name: str) -> int:
    match = _PARTITION.fullmatch(name)
    assert match is not None
    return to_micros(datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC))


class UsageMaintenance(PeriodicTask):
    """Background loop: partitions ahead, then retention, at start and every ``interval`` seconds."""

    name = "usage_maintenance"
    retried = (DatabaseUnavailable, SQLAlchemyError, OSError)

    def __init__(
        self, engine: AsyncEngine, store: SqlEventStore, clock: Clock, *, days: int, interval: float = 3600.0
    ) -> None:
        super().__init__(interval=interval)
        self._engine = engine
        self._store = store
        self._clock = clock
        self._days = days

    async def run_once(self) -> RetentionResult | None:
        now_us = to_micros(self._clock.now())
        await ensure_partitions(self._engine, now_us)
        result = await apply_retention(self._engine, self._store, now_us=now_us, days=self._days)
        if result is not None:
            log.info("usage_retention_applied", boundary=from_micros(result.boundary_us).isoformat(),
                     rows=result.rows, through_position=result.through_position)  # fmt: skip
        return result


async def _rows_below(conn: AsyncConnection, boundary: int) -> tuple[int, int]:
    """How many usage rows were recorded before ``boundary``, and the last position among them."""
    rows, through = (
        await conn.execute(
            select(func.count(), func.coalesce(func.max(usage_log.c.position), 0)).where(
                usage_log.c.recorded_at_us < boundary
            )
        )
    ).one()
    return int(rows), int(through)
