"""Usage over time, counted by outcome per bucket: what ``GET /v1/api-keys/{id}/usage`` answers and what
the dashboard's usage charts draw, computed by this one function so the two can never disagree."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from projections import key_usage
from reservekit.clock import DAY_US, HOUR_US, MINUTE_US, from_micros, to_micros

Bucket = Literal["minute", "hour", "day"]
BUCKET_US: dict[str, int] = {"minute": MINUTE_US, "hour": HOUR_US, "day": DAY_US}
MAX_RANGE: dict[str, timedelta] = {
    "minute": timedelta(days=7),
    "hour": timedelta(days=92),
    "day": timedelta(days=3 * 365 + 1),
}


class SeriesBucket(msgspec.Struct, kw_only=True):
    start: datetime
    counts: dict[str, int]
    total: int


class UsageSeries(msgspec.Struct, kw_only=True):
    bucket: Bucket
    since: datetime
    until: datetime
    data: list[SeriesBucket]
    totals: dict[str, int]
    total: int


async def usage_series(
    conn: AsyncConnection, key_ids: str | key_usage.KeyIds, since: datetime, until: datetime, bucket: Bucket
) -> UsageSeries:
    """Counts over every minute that overlaps [since, until), in UTC-aligned buckets (empty ones absent),
    summed over ``key_ids``: one key, a list, or a select of ids (every key of an account)."""
    since_us, until_us = to_micros(since), to_micros(until)
    rows = await key_usage.usage_buckets(conn, key_ids, since_us, until_us, BUCKET_US[bucket])
    totals: dict[str, int] = {}
    data: list[SeriesBucket] = []
    for row in rows:
        for outcome, count in row.counts.items():
            totals[outcome] = totals.get(outcome, 0) + count
        data.append(
            SeriesBucket(start=from_micros(row.start_us), counts=row.counts, total=sum(row.counts.values()))
        )
    return UsageSeries(
        bucket=bucket,
        since=from_micros(since_us),
        until=from_micros(until_us),
        data=data,
        totals=totals,
        total=sum(totals.values()),
    )
