"""Per-key usage from the usage log: counts per minute and outcome, last use, first-seen IPs and origins,
and an hourly rollup of the minute counts for long ranges (see "Hourly rollup" below).

Every row that names a key counts, refused ones included (a revoked key being tried is usage worth
seeing); rows without a key (missing, malformed or unknown secrets) are not counted here.

The fold is SQL over the log's own table (``_key_usage_fold``): ``apply_range`` aggregates the rows at a
range of positions inside the database and upserts the aggregates, one statement per table; ``apply``
(the live runner's batch) folds the range its batch spans. Results do not depend on how the log is cut:
counts add up, "last" is the row with the greatest (occurred_at_us, position) — ranges are applied in
position order, so a tie goes to the later one — and "first seen" is the least occurred_at_us.

Hourly rollup: a 30-day chart summed ~40,000 minute rows per key twice (counts, busiest minute), so the
same transaction also keeps counts per key, hour and outcome, each scope's (a key's, an account's)
request total per minute, and per scope and hour the busiest minute's total. Minute totals only grow
(rows are upserted with increments), so the hour's busiest minute is kept as GREATEST(stored, the
minute's new total) — exact and independent of batching. Reads use the rollup for whole hours inside the
range and the minute rows for the partial hours at its edges, so results equal the minute-only answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    MetaData,
    Select,
    String,
    Table,
    and_,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from projections._key_usage_fold import ACCOUNT_SCOPE, KEY_SCOPE, fold_statements
from reservekit.clock import HOUR_US, MINUTE_US, from_micros
from reservekit.projecting.sources import USAGE
from reservekit.projecting.spec import Projection
from reservekit.usage.records import UsageRecord


class KeyUsageTables(NamedTuple):
    minutes: Table
    activity: Table
    first_seen: Table
    hours: Table
    minute_totals: Table
    hour_peaks: Table


def key_scope(key_id: str) -> str:
    return KEY_SCOPE + key_id


def account_scope(account_id: str) -> str:
    return ACCOUNT_SCOPE + account_id


def define(metadata: MetaData, suffix: str) -> KeyUsageTables:
    return KeyUsageTables(
        Table(
            f"proj_key_usage_minutes{suffix}",
            metadata,
            Column("key_id", String(64), primary_key=True),
            Column("minute_us", BigInteger, primary_key=True, autoincrement=False),
            Column("outcome", String(32), primary_key=True),
            Column("count", BigInteger, nullable=False),
        ),
        Table(
            f"proj_key_activity{suffix}",
            metadata,
            Column("key_id", String(64), primary_key=True),
            Column("account_id", String(64)),
            Column("last_used_at_us", BigInteger, nullable=False),
            Column("last_ip", String(64), nullable=False),
            Column("last_origin", String(255)),
        ),
        Table(
            f"proj_key_first_seen{suffix}",
            metadata,
            Column("key_id", String(64), primary_key=True),
            Column("kind", String(8), primary_key=True),  # "ip" | "origin"
            Column("value", String(255), primary_key=True),
            Column("first_seen_us", BigInteger, nullable=False),
        ),
        Table(
            f"proj_key_usage_hours{suffix}",
            metadata,
            Column("key_id", String(64), primary_key=True),
            Column("hour_us", BigInteger, primary_key=True, autoincrement=False),
            Column("outcome", String(32), primary_key=True),
            Column("count", BigInteger, nullable=False),
        ),
        Table(  # every outcome, per "key:<id>" and "account:<id>": what the busiest minute is measured by
            f"proj_usage_minute_totals{suffix}",
            metadata,
            Column("scope", String(80), primary_key=True),
            Column("minute_us", BigInteger, primary_key=True, autoincrement=False),
            Column("count", BigInteger, nullable=False),
        ),
        Table(
            f"proj_usage_hour_peaks{suffix}",
            metadata,
            Column("scope", String(80), primary_key=True),
            Column("hour_us", BigInteger, primary_key=True, autoincrement=False),
            Column("peak", BigInteger, nullable=False),
        ),
    )


async def apply(conn: AsyncConnection, tables: KeyUsageTables, batch: Sequence[UsageRecord]) -> None:
    """Fold a batch the runner read: the log's rows from the batch's first position to its last."""
    if batch:
        recorded = [row.recorded_at_us for row in batch]
        await apply_range(
            conn, tables, batch[0].position - 1, batch[-1].position, recorded=(min(recorded), max(recorded))
        )


async def apply_range(
    conn: AsyncConnection,
    tables: KeyUsageTables,
    after: int,
    through: int,
    *,
    recorded: tuple[int, int] | None = None,
    lanes: Sequence[int] = (0, 1),
) -> None:
    """Fold the usage log's rows at positions (after, through] into ``tables``, in the database.

    ``recorded`` (the least and greatest ``recorded_at_us`` of those rows, when the caller knows them)
    lets PostgreSQL skip the day partitions the rows cannot be in. ``lanes`` picks which of the fold's
    two independent parts to run (``_key_usage_fold.fold_statements``): a rebuild runs them side by side.
    """
    params = {"after": after, "through": through, "recorded_from": None, "recorded_until": None}
    if recorded is not None:
        params["recorded_from"], params["recorded_until"] = recorded
    statements = fold_statements(conn.dialect.name, tables, bounded=recorded is not None)
    for lane in lanes:
        for statement in statements[lane]:
            await conn.execute(statement, params)


async def _counts_lane(conn: AsyncConnection, tables: KeyUsageTables, after: int, through: int) -> None:
    await apply_range(conn, tables, after, through, lanes=(0,))


async def _totals_lane(conn: AsyncConnection, tables: KeyUsageTables, after: int, through: int) -> None:
    await apply_range(conn, tables, after, through, lanes=(1,))


PROJECTION = Projection(
    name="key_usage",
    # 2: the hourly rollup (hours, minute totals, hour peaks); the new tables are filled by the replay.
    version=2,
    define=define,
    apply=apply,
    apply_range=apply_range,
    range_lanes=(_counts_lane, _totals_lane),
    description="per-key usage: counts per minute, hour and outcome, last use, first-seen IPs and origins",
    source=USAGE,
)


class UsageBucket(NamedTuple):
    start_us: int
    counts: dict[str, int]


KeyIds = Sequence[str] | Select[tuple[str]]
"""Which keys to count: a list of ids, or a select of them (e.g. every key of an account)."""


def _key_filter(table: Table, key_ids: KeyIds) -> ColumnElement[bool]:
    if isinstance(key_ids, Select):
        return table.c.key_id.in_(key_ids)
    wanted = list(key_ids)
    return table.c.key_id == wanted[0] if len(wanted) == 1 else table.c.key_id.in_(wanted)


class _Split(NamedTuple):
    """Which minutes ``[since_us, until_us)`` covers, cut into whole hours read from the rollup
    (``hours_from`` ≤ hour < ``hours_until``) and edge minutes read from the minute rows."""

    first_minute: int
    until_us: int
    hours_from: int
    hours_until: int

    def minutes_outside_hours(self, column: ColumnElement[int]) -> ColumnElement[bool]:
        if self.hours_from >= self.hours_until:
            return and_(column >= self.first_minute, column < self.until_us)
        return or_(
            and_(column >= self.first_minute, column < self.hours_from),
            and_(column >= self.hours_until, column < self.until_us),
        )


def _split(since_us: int, until_us: int, bucket_us: int) -> _Split:
    # A minute overlaps [since, until) when it starts after since - 1 minute: from since's minute on.
    first_minute = since_us - since_us % MINUTE_US
    if bucket_us % HOUR_US:  # minute buckets: no whole hour can be summed ahead
        return _Split(first_minute, until_us, 0, 0)
    hours_from = -(-first_minute // HOUR_US) * HOUR_US
    return _Split(first_minute, until_us, hours_from, until_us - until_us % HOUR_US)


def _width(bucket_us: int) -> ColumnElement[int]:
    # An inline integer, not a bind parameter: GROUP BY must repeat the select's expression exactly.
    return literal_column(str(int(bucket_us)), BigInteger)


async def usage_buckets(
    conn: AsyncConnection, key_ids: str | KeyIds, since_us: int, until_us: int, bucket_us: int
) -> list[UsageBucket]:
    """Counts by outcome per bucket (aligned to the epoch, so to UTC days) over every minute that overlaps
    [since_us, until_us), summed over ``key_ids`` (one id, a list, or a select of ids). Empty buckets are
    absent; buckets come in time order. Whole hours come from the hourly rollup when buckets are hours
    or days."""
    keys = [key_ids] if isinstance(key_ids, str) else key_ids
    split = _split(since_us, until_us, bucket_us)
    minutes, hours = PROJECTION.live.minutes, PROJECTION.live.hours
    width = _width(bucket_us)
    start = (minutes.c.minute_us - minutes.c.minute_us % width).label("start_us")
    queries = [
        select(start, minutes.c.outcome, func.sum(minutes.c.count).label("n"))
        .where(_key_filter(minutes, keys), split.minutes_outside_hours(minutes.c.minute_us))
        .group_by(start, minutes.c.outcome)
    ]
    if split.hours_from < split.hours_until:
        hour_start = (hours.c.hour_us - hours.c.hour_us % width).label("start_us")
        queries.append(
            select(hour_start, hours.c.outcome, func.sum(hours.c.count).label("n"))
            .where(
                _key_filter(hours, keys),
                hours.c.hour_us >= split.hours_from,
                hours.c.hour_us < split.hours_until,
            )
            .group_by(hour_start, hours.c.outcome)
        )
    counts: dict[int, dict[str, int]] = {}
    for query in queries:
        for row in await conn.execute(query):
            bucket = counts.setdefault(int(row.start_us), {})
            bucket[row.outcome] = bucket.get(row.outcome, 0) + int(row.n)
    return [UsageBucket(start_us, dict(sorted(counts[start_us].items()))) for start_us in sorted(counts)]


async def busiest_minutes(
    conn: AsyncConnection,
    key_ids: KeyIds,
    since_us: int,
    until_us: int,
    bucket_us: int,
    *,
    account_id: str | None = None,
) -> dict[int, int]:
    """``bucket start -> requests in its busiest minute`` (every outcome, summed over ``key_ids``): the
    rate the plan's per-minute limit is measured against. Buckets without requests are absent.

    The rollup keeps busiest minutes per key and per account, so whole hours come from it when
    ``key_ids`` is one key, or is every key of ``account_id`` (pass it); other sets read minute rows."""
    wanted = None if isinstance(key_ids, Select) else list(key_ids)
    if account_id is not None:
        scope: str | None = account_scope(account_id)
    elif wanted is not None and len(wanted) == 1:
        scope = key_scope(wanted[0])
    else:
        scope = None
    split = _split(since_us, until_us, bucket_us if scope is not None else MINUTE_US)
    minutes = PROJECTION.live.minutes
    per_minute = (
        select(minutes.c.minute_us, func.sum(minutes.c.count).label("n"))
        .where(_key_filter(minutes, key_ids), split.minutes_outside_hours(minutes.c.minute_us))
        .group_by(minutes.c.minute_us)
        .subquery("per_minute")
    )
    width = _width(bucket_us)
    start = (per_minute.c.minute_us - per_minute.c.minute_us % width).label("start_us")
    queries = [select(start, func.max(per_minute.c.n).label("peak")).group_by(start)]
    if scope is not None and split.hours_from < split.hours_until:
        peaks = PROJECTION.live.hour_peaks
        hour_start = (peaks.c.hour_us - peaks.c.hour_us % width).label("start_us")
        queries.append(
            select(hour_start, func.max(peaks.c.peak).label("peak"))
            .where(
                peaks.c.scope == scope,
                peaks.c.hour_us >= split.hours_from,
                peaks.c.hour_us < split.hours_until,
            )
            .group_by(hour_start)
        )
    busiest: dict[int, int] = {}
    for query in queries:
        for row in await conn.execute(query):
            busiest[int(row.start_us)] = max(busiest.get(int(row.start_us), 0), int(row.peak))
    return busiest


async def first_seen_recent(
    conn: AsyncConnection, key_id: str, kind: str, *, limit: int
) -> tuple[list[tuple[str, int]], int]:
    """The ``limit`` most recently first-seen values of one kind ("ip" or "origin") for a key, newest
    first, and how many there are in all."""
    table = PROJECTION.live.first_seen
    where = (table.c.key_id == key_id, table.c.kind == kind)
    total = int(await conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)
    result = await conn.execute(
        select(table.c.value, table.c.first_seen_us)
        .where(*where)
        .order_by(table.c.first_seen_us.desc(), table.c.value)
        .limit(limit)
    )
    return [(row.value, int(row.first_seen_us)) for row in result], total


async def last_used(conn: AsyncConnection, key_ids: Iterable[str]) -> dict[str, int]:
    """``key_id -> last_used_at_us`` for the keys that have been used at all."""
    wanted = list(dict.fromkeys(key_ids))
    if not wanted:
        return {}
    activity = PROJECTION.live.activity
    result = await conn.execute(
        select(activity.c.key_id, activity.c.last_used_at_us).where(activity.c.key_id.in_(wanted))
    )
    return {row.key_id: int(row.last_used_at_us) for row in result}


async def last_used_at(conn: AsyncConnection, key_ids: Iterable[str]) -> dict[str, datetime]:
    """Like ``last_used``, as instants (what key listings show)."""
    return {key_id: from_micros(micros) for key_id, micros in (await last_used(conn, key_ids)).items()}


async def first_seen(conn: AsyncConnection, key_id: str) -> dict[str, dict[str, int]]:
    """``{"ip": {value: first_seen_us}, "origin": {...}}`` for one key."""
    table = PROJECTION.live.first_seen
    seen: dict[str, dict[str, int]] = {"ip": {}, "origin": {}}
    result = await conn.execute(select(table).where(table.c.key_id == key_id))
    for row in result:
        seen.setdefault(row.kind, {})[row.value] = int(row.first_seen_us)
    return seen
