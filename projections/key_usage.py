"""Per-key usage from the usage log: counts per minute and outcome, last use, first-seen IPs and origins.

Every row that names a key counts, refused ones included (a revoked key being tried is usage worth
seeing); rows without a key (missing, malformed or unknown secrets) are not counted here.

``apply`` aggregates the whole batch in Python, then writes one upsert per table, so a rebuild costs a
few statements per batch rather than one per row. Results do not depend on how the log is cut into
batches: counts add up, "last" is the row with the greatest (occurred_at_us, position) — batches are
applied in position order, so a tie goes to the later batch — and "first seen" is the least
occurred_at_us.
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
    func,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from projections._upsert import upsert_many
from reservekit.clock import MINUTE_US, from_micros
from reservekit.projecting.sources import USAGE
from reservekit.projecting.spec import Projection
from reservekit.usage.records import UsageRecord


class KeyUsageTables(NamedTuple):
    minutes: Table
    activity: Table
    first_seen: Table


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
    )


async def apply(conn: AsyncConnection, tables: KeyUsageTables, batch: Sequence[UsageRecord]) -> None:
    minutes: dict[tuple[str, int, str], int] = {}
    last: dict[str, tuple[int, int, str | None, str, str | None]] = {}
    first: dict[tuple[str, str, str], int] = {}
    for row in batch:
        key_id = row.key_id
        if key_id is None:
            continue
        at = row.occurred_at_us
        bucket = (key_id, at - at % MINUTE_US, row.outcome)
        minutes[bucket] = minutes.get(bucket, 0) + 1
        seen = last.get(key_id)
        if seen is None or (at, row.position) >= (seen[0], seen[1]):
            last[key_id] = (at, row.position, row.account_id, row.client_ip, row.origin)
        ip = (key_id, "ip", row.client_ip)
        if at < first.get(ip, at + 1):
            first[ip] = at
        if row.origin is not None:
            origin = (key_id, "origin", row.origin)
            if at < first.get(origin, at + 1):
                first[origin] = at
    if not last:
        return
    await upsert_many(
        conn,
        tables.minutes,
        [{"key_id": k, "minute_us": m, "outcome": o, "count": n} for (k, m, o), n in minutes.items()],
        conflict=("key_id", "minute_us", "outcome"),
        set_=lambda excluded: {"count": tables.minutes.c.count + excluded.count},
    )
    activity = tables.activity
    await upsert_many(
        conn,
        activity,
        [
            {"key_id": k, "account_id": a, "last_used_at_us": at, "last_ip": ip, "last_origin": origin}
            for k, (at, _position, a, ip, origin) in last.items()
        ],
        conflict=("key_id",),
        set_=lambda excluded: {
            "account_id": excluded.account_id,
            "last_used_at_us": excluded.last_used_at_us,
            "last_ip": excluded.last_ip,
            "last_origin": excluded.last_origin,
        },
        where=lambda excluded: excluded.last_used_at_us >= activity.c.last_used_at_us,
    )
    seen_table = tables.first_seen
    await upsert_many(
        conn,
        seen_table,
        [{"key_id": k, "kind": kind, "value": v, "first_seen_us": at} for (k, kind, v), at in first.items()],
        conflict=("key_id", "kind", "value"),
        set_=lambda excluded: {"first_seen_us": excluded.first_seen_us},
        where=lambda excluded: excluded.first_seen_us < seen_table.c.first_seen_us,
    )


PROJECTION = Projection(
    name="key_usage",
    version=1,
    define=define,
    apply=apply,
    description="per-key usage: counts per minute and outcome, last use, first-seen IPs and origins",
    source=USAGE,
)


class UsageBucket(NamedTuple):
    start_us: int
    counts: dict[str, int]


KeyIds = Sequence[str] | Select[tuple[str]]
"""Which keys to count: a list of ids, or a select of them (e.g. every key of an account)."""


def _key_filter(minutes: Table, key_ids: KeyIds) -> ColumnElement[bool]:
    if isinstance(key_ids, Select):
        return minutes.c.key_id.in_(key_ids)
    wanted = list(key_ids)
    return minutes.c.key_id == wanted[0] if len(wanted) == 1 else minutes.c.key_id.in_(wanted)


async def usage_buckets(
    conn: AsyncConnection, key_ids: str | KeyIds, since_us: int, until_us: int, bucket_us: int
) -> list[UsageBucket]:
    """Counts by outcome per bucket (aligned to the epoch, so to UTC days) over every minute that overlaps
    [since_us, until_us), summed over ``key_ids`` (one id, a list, or a select of ids). Empty buckets are
    absent; buckets come in time order."""
    minutes = PROJECTION.live.minutes
    keys = [key_ids] if isinstance(key_ids, str) else key_ids
    # An inline integer, not a bind parameter: GROUP BY must repeat the select's expression exactly.
    width = literal_column(str(int(bucket_us)), BigInteger)
    start = (minutes.c.minute_us - minutes.c.minute_us % width).label("start_us")
    query = (
        select(start, minutes.c.outcome, func.sum(minutes.c.count).label("n"))
        .where(
            _key_filter(minutes, keys),
            minutes.c.minute_us > since_us - MINUTE_US,
            minutes.c.minute_us < until_us,
        )
        .group_by(start, minutes.c.outcome)
        .order_by(start, minutes.c.outcome)
    )
    buckets: list[UsageBucket] = []
    for row in await conn.execute(query):
        start_us = int(row.start_us)
        if not buckets or buckets[-1].start_us != start_us:
            buckets.append(UsageBucket(start_us, {}))
        buckets[-1].counts[row.outcome] = int(row.n)
    return buckets


async def busiest_minutes(
    conn: AsyncConnection, key_ids: KeyIds, since_us: int, until_us: int, bucket_us: int
) -> dict[int, int]:
    """``bucket start -> requests in its busiest minute`` (every outcome, summed over ``key_ids``): the
    rate the plan's per-minute limit is measured against. Buckets without requests are absent."""
    minutes = PROJECTION.live.minutes
    per_minute = (
        select(minutes.c.minute_us, func.sum(minutes.c.count).label("n"))
        .where(
            _key_filter(minutes, key_ids),
            minutes.c.minute_us > since_us - MINUTE_US,
            minutes.c.minute_us < until_us,
        )
        .group_by(minutes.c.minute_us)
        .subquery("per_minute")
    )
    width = literal_column(str(int(bucket_us)), BigInteger)
    start = (per_minute.c.minute_us - per_minute.c.minute_us % width).label("start_us")
    query = select(start, func.max(per_minute.c.n).label("peak")).group_by(start)
    return {int(row.start_us): int(row.peak) for row in await conn.execute(query)}


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
