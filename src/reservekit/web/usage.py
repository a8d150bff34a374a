"""A key's usage over time: counts by outcome per minute, hour or day, from the key_usage projection."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from projections import key_usage
from reservekit.auth.key_view import CachedKey
from reservekit.clock import from_micros, to_micros
from reservekit.db import read_transaction
from reservekit.domain.errors import DomainError
from reservekit.runtime import Runtime
from reservekit.usecases.keys import load_key
from reservekit.web.access import requires

Bucket = Literal["minute", "hour", "day"]
BUCKET_US: dict[str, int] = {
    "minute": key_usage.MINUTE_US,
    "hour": key_usage.HOUR_US,
    "day": key_usage.DAY_US,
}
MAX_RANGE: dict[str, timedelta] = {
    "minute": timedelta(days=7),
    "hour": timedelta(days=92),
    "day": timedelta(days=3 * 365 + 1),
}
DEFAULT_RANGE = timedelta(hours=24)
SINCE_DOC = "RFC 3339 with an offset; default: 24 h before until"
UNTIL_DOC = "RFC 3339 with an offset; default: now"
# An unencoded "+" in a query string arrives as a space: "…T12:00:00 02:00" means "…T12:00:00+02:00".
_SPACE_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:\d{2})$")


class UsageBucketOut(msgspec.Struct, kw_only=True):
    start: datetime
    counts: dict[str, int]
    total: int


class KeyUsageOut(msgspec.Struct, kw_only=True):
    key_id: str
    bucket: Bucket
    since: datetime
    until: datetime
    data: list[UsageBucketOut]
    totals: dict[str, int]
    total: int


class UsageController(Controller):
    path = "/v1/api-keys"
    tags = ["usage"]

    @get(
        "/{key_id:str}/usage",
        opt=requires("usage:read"),
        summary="Requests made with a key, counted by outcome per minute, hour or day",
        description=(
            "Counts every request that named the key, refused ones included, over each minute that "
            "overlaps [since, until). Buckets are aligned to UTC; empty buckets are omitted."
        ),
    )
    async def usage(
        self,
        key_id: FromPath[str],
        caller: NamedDependency[CachedKey],
        runtime: NamedDependency[Runtime],
        since: Annotated[str | None, Parameter(description=SINCE_DOC, max_length=64)] = None,
        until: Annotated[str | None, Parameter(description=UNTIL_DOC, max_length=64)] = None,
        bucket: Annotated[Bucket, Parameter(description="bucket width (UTC-aligned)")] = "hour",
    ) -> KeyUsageOut:
        end = _instant(until, "until") if until is not None else runtime.clock.now()
        start = _instant(since, "since") if since is not None else end - DEFAULT_RANGE
        if start >= end:
            raise DomainError("since must be earlier than until", field="since")
        if end - start > MAX_RANGE[bucket]:
            raise DomainError(
                f"with bucket={bucket} the range may span at most {MAX_RANGE[bucket].days} days",
                field="since",
            )
        state = await load_key(runtime.authority, account_id=caller.account_id, key_id=key_id)
        async with read_transaction(runtime.engine) as conn:
            rows = await key_usage.usage_buckets(
                conn, state.key_id, to_micros(start), to_micros(end), BUCKET_US[bucket]
            )
        totals: dict[str, int] = {}
        data = []
        for row in rows:
            for outcome, count in row.counts.items():
                totals[outcome] = totals.get(outcome, 0) + count
            data.append(
                UsageBucketOut(
                    start=from_micros(row.start_us), counts=row.counts, total=sum(row.counts.values())
                )
            )
        return KeyUsageOut(
            key_id=state.key_id,
            bucket=bucket,
            since=from_micros(to_micros(start)),
            until=from_micros(to_micros(end)),
            data=data,
            totals=totals,
            total=sum(totals.values()),
        )


def _instant(value: str, field: str) -> datetime:
    text = _SPACE_OFFSET.sub(r"\1+\2", value.strip())
    try:
        moment = msgspec.convert(text, datetime)
    except msgspec.ValidationError:
        raise DomainError(
            f"{field} must be an RFC 3339 timestamp with an offset, e.g. 2026-06-01T12:00:00Z", field=field
        ) from None
    if moment.tzinfo is None:
        raise DomainError(f"{field} needs a UTC offset (Z or ±HH:MM)", field=field)
    return moment
