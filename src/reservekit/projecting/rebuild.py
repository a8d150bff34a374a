"""Rebuild a projection from the log into fresh tables: to the head, to a position, or as of an instant.

``verify`` snapshots the live tables and their checkpoint first, rebuilds to exactly that checkpoint,
and compares row by row, so a live runner moving on meanwhile cannot cause a false difference.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing, suppress
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import MetaData, Table, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reservekit.clock import Clock, SystemClock, to_micros
from reservekit.db import is_sqlite, read_transaction, write_transaction
from reservekit.events.tables import projection_checkpoints
from reservekit.projecting.spec import AnyProjection, RangeFold

Progress = Callable[[int, int], None]
DEFAULT_BATCH_SIZE = 10_000


class RebuildResult(msgspec.Struct, frozen=True):
    projection: str
    until_position: int
    events_applied: int
    tables: tuple[str, ...]
    differences: tuple[str, ...] = ()


async def position_as_of(engine: AsyncEngine, projection: AnyProjection, moment: datetime) -> int:
    """The last position of the projection's own log recorded at or before ``moment``."""
    async with read_transaction(engine) as conn:
        return await projection.source.position_as_of(conn, to_micros(moment))


async def rebuild_into(
    engine: AsyncEngine,
    projection: AnyProjection,
    *,
    suffix: str,
    until: int | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> RebuildResult:
    """Replay the log into ``<table><suffix>`` tables (dropped first if they exist), in batches of
    ``batch_size`` items (``DEFAULT_BATCH_SIZE``)."""
    tables = projection.tables(suffix)
    metadata = tables[0].metadata
    async with write_transaction(engine) as conn:
        await conn.run_sync(lambda sync: metadata.drop_all(sync, checkfirst=True))
        await conn.run_sync(lambda sync: metadata.create_all(sync))
        target = await projection.source.head(conn) if until is None else until
    if projection.apply_range is not None:
        # SQLite has one writer at a time: lanes side by side would only queue for its lock.
        lanes = projection.range_lanes if projection.range_lanes and not is_sqlite(engine) else ()
        applied = await _fold_ranges(
            engine, projection, lanes or (projection.apply_range,), tables, until=target, progress=progress
        )
    else:
        applied = 0
        replay = projection.replay() if projection.replay is not None else None
        apply = replay.apply if replay is not None else projection.apply
        size = batch_size or DEFAULT_BATCH_SIZE
        async with aclosing(_batches(engine, projection, until=target, batch_size=size)) as batches:
            async for batch in batches:
                async with write_transaction(engine) as conn:
                    await apply(conn, tables, batch)
                applied += len(batch)
                if progress:
                    progress(batch[-1].position, target)
        if replay is not None:
            async with write_transaction(engine) as conn:
                await replay.finish(conn, tables)
    if progress:
        progress(target, target)  # a projection reading a few event types may finish short of the head
    return RebuildResult(projection.name, target, applied, tuple(str(t.name) for t in tables))


RANGE_SIZE = 25_000
"""Positions per transaction when the database folds the log itself (``Projection.apply_range``): large
enough that a statement's fixed cost vanishes, small enough that the progress bar moves every second."""


async def _fold_ranges(
    engine: AsyncEngine,
    projection: AnyProjection,
    lanes: Sequence[RangeFold[Any]],
    tables: tuple[Table, ...],
    *,
    until: int,
    progress: Progress | None,
) -> int:
    """Hand the database the log up to ``until`` in ranges, each lane on its own connection, side by side;
    returns how many positions they covered. The progress bar follows the slowest lane."""
    async with read_transaction(engine) as conn:
        first = await projection.source.read_after(conn, 0, limit=1, until=until)
    # Retention may have removed the oldest rows: start at the first one kept, not at position 1.
    start = first[0].position - 1 if first else until
    reached = [start] * len(lanes)

    async def run(lane: int, fold: RangeFold[Any]) -> None:
        for after in range(start, until, RANGE_SIZE):
            through = min(after + RANGE_SIZE, until)
            async with write_transaction(engine) as conn:
                await fold(conn, tables, after, through)
            reached[lane] = through
            if progress and through == min(reached):
                progress(through, until)

    tasks = [asyncio.ensure_future(run(lane, fold)) for lane, fold in enumerate(lanes)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        # One lane failed (or the rebuild was cancelled): stop the others before the error goes up.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return until - start


async def _batches(
    engine: AsyncEngine, projection: AnyProjection, *, until: int, batch_size: int
) -> AsyncGenerator[Sequence[Any], None]:
    """The log up to ``until`` in batches (only the event types the projection folds), read one ahead.

    The next batch is read on a connection of its own while the caller applies this one, so the
    database's scan and this process's fold overlap instead of taking turns. A private in-memory SQLite
    database has a single connection: there the batches are read in turn.
    """

    async def read(after: int) -> Sequence[Any]:
        async with read_transaction(engine) as conn:
            return await projection.read_after(conn, after, limit=batch_size, until=until)

    ahead = not (is_sqlite(engine) and engine.url.database in (None, "", ":memory:"))
    pending: asyncio.Future[Sequence[Any]] | None = None
    position = 0
    try:
        while position < until:
            batch = await (pending if pending is not None else read(position))
            pending = None
            if not batch:
                return
            position = batch[-1].position
            if ahead and position < until:
                pending = asyncio.ensure_future(read(position))
            yield batch
    finally:
        if pending is not None:
            pending.cancel()
            with suppress(asyncio.CancelledError):
                await pending


async def snapshot(conn: AsyncConnection, tables: Sequence[Table]) -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for table in tables:
        order = list(table.primary_key.columns) or list(table.columns)
        result = await conn.execute(select(*table.columns).order_by(*order))
        rows[_base_name(table.name)] = [tuple(row) for row in result]
    return rows


def _base_name(name: str) -> str:
    return name.split("__", 1)[0]


def diff_snapshots(
    live: dict[str, list[tuple[Any, ...]]], rebuilt: dict[str, list[tuple[Any, ...]]]
) -> list[str]:
    differences: list[str] = []
    for name in sorted(set(live) | set(rebuilt)):
        left, right = set(live.get(name, [])), set(rebuilt.get(name, []))
        for row in sorted(left - right, key=repr)[:20]:
            differences.append(f"{name}: live only {row!r}")
        for row in sorted(right - left, key=repr)[:20]:
            differences.append(f"{name}: rebuilt only {row!r}")
    return differences


async def verify_projection(
    engine: AsyncEngine, projection: AnyProjection, *, progress: Progress | None = None
) -> RebuildResult:
    async with engine.connect() as conn:
        if not is_sqlite(conn):
            await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            checkpoint = await conn.scalar(
                select(projection_checkpoints.c.position).where(
                    projection_checkpoints.c.name == projection.name
                )
            )
            live = await snapshot(conn, projection.live)
    suffix = "__verify"
    result = await rebuild_into(
        engine, projection, suffix=suffix, until=int(checkpoint or 0), progress=progress
    )
    fresh = projection.tables(suffix)
    async with read_transaction(engine) as conn:
        rebuilt = await snapshot(conn, fresh)
    await drop_tables(engine, fresh)
    return msgspec.structs.replace(result, differences=tuple(diff_snapshots(live, rebuilt)))


async def drop_tables(engine: AsyncEngine, tables: Sequence[Table]) -> None:
    metadata: MetaData = tables[0].metadata
    async with write_transaction(engine) as conn:
        await conn.run_sync(lambda sync: metadata.drop_all(sync, checkfirst=True))


async def replace_live(
    engine: AsyncEngine,
    projection: AnyProjection,
    *,
    progress: Progress | None = None,
    clock: Clock | None = None,
) -> RebuildResult:
    """Rebuild to the head, then swap the fresh tables in under the checkpoint lock."""
    clock = clock or SystemClock()
    suffix = f"__rb{to_micros(clock.now())}"
    result = await rebuild_into(engine, projection, suffix=suffix, progress=progress)
    fresh = projection.tables(suffix)
    async with write_transaction(engine) as conn:
        query = select(projection_checkpoints.c.position).where(
            projection_checkpoints.c.name == projection.name
        )
        if not is_sqlite(conn):
            query = query.with_for_update()
        await conn.execute(query)
        # The head first: appends commit in position order, so everything up to it is readable now and
        # the checkpoint can be the head even when none of the last events is one this projection folds.
        head = await projection.source.head(conn)
        if projection.apply_range is not None:
            await projection.apply_range(conn, fresh, result.until_position, head)
        else:
            remainder = await projection.read_after(conn, result.until_position, limit=10_000_000, until=head)
            if remainder:
                await projection.apply(conn, fresh, remainder)
        live_meta = projection.live[0].metadata
        await conn.run_sync(lambda sync: live_meta.drop_all(sync, checkfirst=True))
        for table, live_table in zip(fresh, projection.live, strict=True):
            await conn.execute(text(f'ALTER TABLE "{table.name}" RENAME TO "{live_table.name}"'))
        await conn.execute(
            update(projection_checkpoints)
            .where(projection_checkpoints.c.name == projection.name)
            .values(
                position=head,
                version=projection.version,
                updated_at_us=to_micros(clock.now()),
            )
        )
    return result


FORENSIC_MARKER = "__asof_"
_FORENSIC_TABLE = re.compile(r"proj_[a-z0-9_]+__asof_[a-z0-9_]+")


async def forensic_tables(engine: AsyncEngine) -> list[str]:
    """Tables that ``rebuild --until-position/--as-of`` wrote (``proj_<name>__asof_<position>``)."""
    async with engine.connect() as conn:
        names: list[str] = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    return sorted(name for name in names if _FORENSIC_TABLE.fullmatch(name))


async def drop_forensic_tables(engine: AsyncEngine, names: Sequence[str]) -> None:
    """Drop forensic copies in one transaction; refuses anything that is not one."""
    if any(not _FORENSIC_TABLE.fullmatch(name) for name in names):
        raise ValueError("only forensic copies may be dropped")
    async with write_transaction(engine) as conn:
        for name in names:
            await conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
