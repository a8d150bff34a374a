"""A key's usage over time: counts by outcome per minute, hour or day, from the key_usage projection."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from reservekit.db import read_transaction
from reservekit.usage.series import MAX_RANGE, Bucket, usage_series
from reservekit.web.access import requires
from reservekit.web.deps import ApiCall
from reservekit.web.params import optional_instant
from reservekit.web.problems import InvalidParameter

DEFAULT_RANGE = timedelta(hours=24)
SINCE_DOC = "RFC 3339 with an offset; default: 24 h before until"
UNTIL_DOC = "RFC 3339 with an offset; default: now"


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
        call: NamedDependency[ApiCall],
        since: Annotated[str | None, Parameter(description=SINCE_DOC, max_length=64)] = None,
        until: Annotated[str | None, Parameter(description=UNTIL_DOC, max_length=64)] = None,
        bucket: Annotated[Bucket, Parameter(description="bucket width (UTC-aligned)")] = "hour",
    ) -> KeyUsageOut:
        end = optional_instant(until, "until") or call.clock.now()
        start = optional_instant(since, "since") or end - DEFAULT_RANGE
        if start >= end:
            raise InvalidParameter("since must be earlier than until", field="since")
        if end - start > MAX_RANGE[bucket]:
            raise InvalidParameter(
                f"with bucket={bucket} the range may span at most {MAX_RANGE[bucket].days} days",
                field="since",
            )
        state = await call.application.key(key_id, account_id=call.caller.account_id)
        async with read_transaction(call.engine) as conn:
            series = await usage_series(conn, state.key_id, start, end, bucket)
        return KeyUsageOut(
            key_id=state.key_id,
            bucket=bucket,
            since=series.since,
            until=series.until,
            data=[UsageBucketOut(start=b.start, counts=b.counts, total=b.total) for b in series.data],
            totals=series.totals,
            total=series.total,
        )
