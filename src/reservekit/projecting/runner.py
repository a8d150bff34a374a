"""Keeps live projections current: rows and checkpoint in one transaction, resumed from the checkpoint.

Several replicas may run the same runner against one database: the checkpoint row is locked for the
whole batch (``FOR UPDATE`` on PostgreSQL, the write lock on SQLite), so exactly one applies each batch
and the others find nothing left to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import structlog
from sqlalchemy import MetaData, Table, bindparam, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reservekit.background import WakeUp, stop_loop, wait_for_wakeup
from reservekit.clock import Clock, SystemClock, to_micros
from reservekit.db import DatabaseUnavailable, is_sqlite, read_transaction, write_transaction
from reservekit.events.tables import projection_checkpoints
from reservekit.projecting.recent import RecentAppends
from reservekit.projecting.spec import AnyProjection

log = structlog.get_logger(__name__)
_SETUP_LOCK_KEY = 0x5253_4B32


class ProjectionStatus:
    def __init__(self, name: str, version: int, checkpoint: int, head: int) -> None:
        self.name = name
        self.version = version
        self.checkpoint = checkpoint
        self.head = head

    @property
    def lag(self) -> int:
        return max(self.head - self.checkpoint, 0)


async def ensure_projection(conn: AsyncConnection, projection: AnyProjection, clock: Clock) -> None:
    """Create the projection's tables and checkpoint; a new version drops the old rows and replays."""
    if not is_sqlite(conn):
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SETUP_LOCK_KEY})
    stored = (
        await conn.execute(
            select(projection_checkpoints.c.version).where(projection_checkpoints.c.name == projection.name)
        )
    ).scalar_one_or_none()
    tables = projection.live
    if stored is not None and stored != projection.version:
        log.info(
            "projection_version_changed", projection=projection.name, stored=stored, code=projection.version
        )
        await conn.run_sync(lambda sync: _metadata_of(tables).drop_all(sync, checkfirst=True))
        await conn.execute(
            update(projection_checkpoints)
            .where(projection_checkpoints.c.name == projection.name)
            .values(version=projection.version, position=0, updated_at_us=to_micros(clock.now()))
        )
    await conn.run_sync(lambda sync: _metadata_of(tables).create_all(sync, checkfirst=True))
    if stored is None:
        await conn.execute(
            insert(projection_checkpoints).values(
                name=projection.name,
                version=projection.version,
                position=0,
                updated_at_us=to_micros(clock.now()),
            )
        )


def _metadata_of(tables: Sequence[Table]) -> MetaData:
    return tables[0].metadata


LIVE_BATCH_SIZE = 500
"""Items per transaction when a projection catches up: the default, and the runner's on SQLite."""
POSTGRES_LIVE_BATCH_SIZE = 5_000
"""The runner's on PostgreSQL. The usage writer appends up to 2,000 rows at a time; in batches of 500 each
append became four transactions per usage projection, and their fixed work on PostgreSQL's side
(checkpoint lock, read, commit) took a fifth of what the request-serving process could serve
(``GET /v1/services`` 2,246 → 2,855 req/s, docs/benchmarks.md sixth pass). On SQLite larger batches hold
its one write lock longer and measured 5 to 8 % slower, so it keeps 500."""


def live_batch_size(engine: AsyncEngine) -> int:
    return LIVE_BATCH_SIZE if is_sqlite(engine) else POSTGRES_LIVE_BATCH_SIZE


async def apply_next_batch(
    engine: AsyncEngine,
    projection: AnyProjection,
    *,
    batch_size: int = LIVE_BATCH_SIZE,
    clock: Clock | None = None,
) -> int:
    """Apply the events after the checkpoint (at most ``batch_size``); returns how many were applied."""
    clock = clock or SystemClock()
    tables = projection.live
    async with write_transaction(engine) as conn:
        query = select(projection_checkpoints.c.position).where(
            projection_checkpoints.c.name == projection.name
        )
        if not is_sqlite(conn):
            query = query.with_for_update()
        checkpoint = (await conn.execute(query)).scalar_one()
        batch = await projection.source.read_after(conn, int(checkpoint), limit=batch_size)
        if not batch:
            return 0
        await projection.apply(conn, tables, batch)
        await conn.execute(
            update(projection_checkpoints)
            .where(projection_checkpoints.c.name == projection.name)
            .values(position=batch[-1].position, updated_at_us=to_micros(clock.now()))
        )
    return len(batch)


async def catch_up(
    engine: AsyncEngine, projection: AnyProjection, *, batch_size: int = LIVE_BATCH_SIZE
) -> int:
    applied = 0
    while count := await apply_next_batch(engine, projection, batch_size=batch_size):
        applied += count
        if count < batch_size:  # a short batch reached the head: no second transaction to find nothing
            break
    return applied


async def apply_up_to(
    engine: AsyncEngine,
    projections: Sequence[AnyProjection],
    position: int,
    *,
    limit: int = 500,
    clock: Clock | None = None,
    recent: RecentAppends | None = None,
) -> int | None:
    """Bring every projection of ``projections`` (one log) to ``position`` in one transaction.

    The checkpoints are locked together, the log is read once from the lowest of them, and each
    projection applies only what lies after its own checkpoint. Returns how many projections moved,
    or None, having written nothing, when more than ``limit`` items are missing (the caller then
    catches up batch by batch).
    """
    if not projections:
        return 0
    clock = clock or SystemClock()
    names = [p.name for p in projections]
    async with write_transaction(engine) as conn:
        query = _CHECKPOINTS if is_sqlite(conn) else _CHECKPOINTS_LOCKED
        reached = {str(row.name): int(row.position) for row in await conn.execute(query, {"names": names})}
        behind = [p for p in projections if reached.get(p.name, 0) < position]
        if not behind:
            return 0
        lowest = min(reached.get(p.name, 0) for p in behind)
        if position - lowest > limit:
            return None
        known = recent.between(lowest, position) if recent is not None else None
        batch = known or await behind[0].source.read_after(conn, lowest, limit=limit, until=position)
        if not batch:
            return 0
        moved: list[str] = []
        for projection in behind:
            mine = [item for item in batch if item.position > reached.get(projection.name, 0)]
            if mine:  # the batch's tail: mine[-1] is batch[-1]
                await projection.apply(conn, projection.live, mine)
                moved.append(projection.name)
        if moved:  # every checkpoint in one statement: a single-event write moves four of them
            await conn.execute(
                _MOVE_CHECKPOINTS,
                {"names": moved, "to_position": batch[-1].position, "at_us": to_micros(clock.now())},
            )
    return len(moved)


# Built once (read-your-writes runs these after every write); the lock order is by name on PostgreSQL.
_CHECKPOINTS = select(projection_checkpoints.c.name, projection_checkpoints.c.position).where(
    projection_checkpoints.c.name.in_(bindparam("names", expanding=True))
)
_CHECKPOINTS_LOCKED = _CHECKPOINTS.order_by(projection_checkpoints.c.name).with_for_update()
_MOVE_CHECKPOINTS = (
    update(projection_checkpoints)
    .where(projection_checkpoints.c.name.in_(bindparam("names", expanding=True)))
    .values(position=bindparam("to_position"), updated_at_us=bindparam("at_us"))
)


async def projection_status(
    engine: AsyncEngine, projections: Sequence[AnyProjection]
) -> list[ProjectionStatus]:
    async with read_transaction(engine) as conn:
        heads = {
            source.name: await source.head(conn)
            for source in {p.source.name: p.source for p in projections}.values()
        }
        rows = {
            row.name: row
            for row in await conn.execute(
                select(projection_checkpoints.c.name, projection_checkpoints.c.position)
            )
        }
    return [
        ProjectionStatus(
            p.name, p.version, int(rows[p.name].position) if p.name in rows else 0, heads[p.source.name]
        )
        for p in projections
    ]


class ProjectionRunner:
    """Background task: wakes on a notification or every poll interval, and catches every projection up."""

    def __init__(
        self,
        engine: AsyncEngine,
        projections: Sequence[AnyProjection],
        wakeup: WakeUp,
        *,
        poll_interval: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self._engine = engine
        self._batch_size = live_batch_size(engine)
        self._projections = list(projections)
        # Fed by the event store's append listener (runtime.py): read-your-writes applies these
        # instead of reading back what this process has just written.
        self.recent = RecentAppends()
        # Called after a pass that applied something (the webhook dispatcher follows the projections).
        self.on_applied: list[Callable[[], None]] = []
        self._wakeup = wakeup
        self._poll_interval = poll_interval
        self._clock = clock or SystemClock()
        self._task: asyncio.Task[None] | None = None
        self.caught_up = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def projections(self) -> list[AnyProjection]:
        return self._projections

    async def setup(self) -> None:
        async with write_transaction(self._engine) as conn:
            for projection in self._projections:
                await ensure_projection(conn, projection, self._clock)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reservekit-projections")

    async def stop(self) -> None:
        await stop_loop(self._task, self._stopping, self._wakeup.notify)
        self._task = None

    async def run_all_once(self, *, source: str | None = None) -> int:
        """Catch every projection up (or only those following ``source``: "events" or "usage").

        One read of the heads and checkpoints first: a projection already at its log's head is left
        alone, instead of taking its checkpoint lock (a write transaction, SQLite's one writer) to find
        nothing. Something appended after that read wakes the next pass.
        """
        chosen = [p for p in self._projections if source is None or p.source.name == source]
        statuses = await projection_status(self._engine, chosen) if chosen else []
        total = 0
        for projection, status in zip(chosen, statuses, strict=True):
            if status.lag:
                total += await catch_up(self._engine, projection, batch_size=self._batch_size)
        if total:
            for listener in self.on_applied:
                listener()
        return total

    async def wait_until(self, position: int, *, source: str = "events") -> None:
        """Read-your-writes: return once every projection following ``source`` has applied ``position``.

        Rather than polling for the background runner (pyeventsourcing's ``wait``), the caller applies
        what is missing itself, under the same checkpoint lock: no timeout to tune, and projections
        already past ``position`` cost one locked read of their checkpoints.
        """
        following = [p for p in self._projections if p.source.name == source]
        if not following:
            return
        # Straight to the locked read: after a write the projections are nearly always behind, so a
        # separate unlocked look first would cost a transaction and rarely spare one.
        recent = self.recent if source == "events" else None
        moved = await apply_up_to(self._engine, following, position, clock=self._clock, recent=recent)
        if moved is None:
            size = self._batch_size
            moved = sum(
                [await catch_up(self._engine, projection, batch_size=size) for projection in following]
            )
        if moved:
            # What the background pass would have announced had it applied these (the webhook
            # dispatcher reads the outbox projection): the caller got there first, so it tells.
            for listener in self.on_applied:
                listener()

    async def _run(self) -> None:
        waiter = self._wakeup.subscribe()
        backoff = self._poll_interval
        try:
            while not self._stopping.is_set():
                try:
                    await self.run_all_once()
                    self.caught_up.set()
                    backoff = self._poll_interval
                except (DatabaseUnavailable, SQLAlchemyError, OSError) as exc:
                    # The checkpoint did not move with the failed batch; the next pass redoes it exactly.
                    log.warning("projection_batch_failed", error=str(exc), retry_in=backoff)
                    backoff = min(backoff * 2, 30.0)
                await wait_for_wakeup(waiter, backoff)
        finally:
            self._wakeup.unsubscribe(waiter)
