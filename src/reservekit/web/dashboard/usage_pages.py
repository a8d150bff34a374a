"""The usage pages: the account's and each key's requests over time by outcome, the busiest minute
against the plan's limit, recent requests (filterable, paginated) and a key's first-seen IPs and origins.

The numbers come from the same functions as the API: ``usage_series`` (``GET /v1/api-keys/{id}/usage``)
and ``read_usage`` (``GET /v1/audit/usage``); the chart is drawn from the series it shows in its table.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter
from litestar.response import Template
from sqlalchemy import select

from projections import api_keys, key_usage
from reservekit.audit.trail import UsageFilter, read_usage
from reservekit.clock import from_micros, to_micros
from reservekit.db import read_transaction
from reservekit.domain.errors import InvalidInput
from reservekit.domain.keys import KeyState
from reservekit.usage.series import BUCKET_US, Bucket, UsageSeries, usage_series
from reservekit.web.dashboard.pages import render, when
from reservekit.web.dashboard.roles import Viewer, usage_viewer
from reservekit.web.dashboard.usage_chart import (
    OUTCOME_LABELS,
    label_of,
    ordered_outcomes,
    outcome_chart,
    rate_chart,
    slots,
)
from reservekit.web.dashboard.visit import Visit

Range = Literal["1h", "24h", "7d", "30d"]
RANGES: dict[str, tuple[timedelta, Bucket]] = {
    "1h": (timedelta(hours=1), "minute"),
    "24h": (timedelta(hours=24), "hour"),
    "7d": (timedelta(days=7), "hour"),
    "30d": (timedelta(days=30), "day"),
}
RECENT_PAGE = 50
FIRST_SEEN_SHOWN = 50
KEY_CHOICES = 500
MAX_CURSOR = 2**63 - 1

Period = Annotated[Range, Parameter(description="1h, 24h, 7d or 30d")]
OutcomeParam = Annotated[str | None, Parameter(max_length=32)]
KeyParam = Annotated[str | None, Parameter(max_length=64)]
BeforeParam = Annotated[int | None, Parameter(ge=1, le=MAX_CURSOR)]


def chart_rows(series: UsageSeries, peaks: dict[int, int]) -> dict[str, Any]:
    """Every bucket of the range (zeros where nothing happened), the outcomes present, and both charts."""
    width = timedelta(microseconds=BUCKET_US[series.bucket])
    starts = slots(series.since, series.until, width)
    by_start = {b.start: b.counts for b in series.data}
    counts = [by_start.get(start, {}) for start in starts]
    busiest = [peaks.get(to_micros(start), 0) for start in starts]
    return {
        "starts": starts,
        "counts": counts,
        "busiest": busiest,
        "outcomes": ordered_outcomes(list(series.totals)),
        "width": width,
    }


class UsagePages(Controller):
    path = "/usage"

    async def _page(
        self,
        visit: Visit,
        seen: Viewer,
        *,
        key: KeyState | None,
        range_: str,
        outcome: str | None,
        key_filter: str | None,
        before: int | None,
    ) -> Template:
        outcome = outcome or None  # the filter form's "Any outcome"
        if outcome is not None and outcome not in OUTCOME_LABELS:
            raise InvalidInput(f"outcome must be one of {', '.join(OUTCOME_LABELS)}", field="outcome")
        span, bucket = RANGES[range_]
        until = visit.clock.now()
        since = until - span
        keys_table = api_keys.PROJECTION.live.keys
        async with read_transaction(visit.engine) as conn:
            # The ids first, then ``key_id IN (…)``: a sub-select let PostgreSQL scan every key's minutes.
            account_keys = select(keys_table.c.key_id).where(keys_table.c.account_id == seen.account_id)
            scope = [key.key_id] if key else list(await conn.scalars(account_keys))
            series = await usage_series(conn, scope, since, until, bucket)
            peaks = await key_usage.busiest_minutes(
                conn,
                scope,
                to_micros(since),
                to_micros(until),
                BUCKET_US[bucket],
                account_id=None if key else seen.account_id,  # every key of the account: its rollup
            )
            choices = [] if key else await api_keys.list_for_account(conn, seen.account_id, limit=KEY_CHOICES)
            seen_ips = seen_origins = None
            if key:
                seen_ips = await key_usage.first_seen_recent(conn, key.key_id, "ip", limit=FIRST_SEEN_SHOWN)
                seen_origins = await key_usage.first_seen_recent(
                    conn, key.key_id, "origin", limit=FIRST_SEEN_SHOWN
                )
        rows = await read_usage(
            visit.engine,
            UsageFilter(
                account_id=seen.account_id,
                key_id=key.key_id if key else key_filter,
                outcome=outcome,
                newest_first=True,
                before=before,
                limit=RECENT_PAGE + 1,
            ),
        )
        plans = visit.application.deps.plans
        chart = chart_rows(series, peaks)
        return render(
            "usage.html",
            title=f"Usage of {key.name or key.key_id}" if key else "Usage",
            nav="usage",
            key=key,
            range=range_,
            ranges=list(RANGES),
            series=series,
            chart=chart,
            outcome_svg=outcome_chart(chart["starts"], chart["counts"], chart["width"], ident="by-outcome"),
            rate_svg=rate_chart(
                chart["starts"], chart["busiest"], plans.get(seen.plan), chart["width"], ident="rate"
            ),
            limit=plans.get(seen.plan),
            plan=seen.plan,
            label_of=label_of,
            all_outcomes=OUTCOME_LABELS,
            outcome=outcome,
            key_filter=key_filter,
            key_choices=choices,
            recent=rows[:RECENT_PAGE],
            next_before=rows[RECENT_PAGE - 1].position if len(rows) > RECENT_PAGE else None,
            before=before,
            seen_ips=seen_ips,
            seen_origins=seen_origins,
            from_micros=from_micros,
            when=when,
            stamp=_stamp,
        )

    @get("/")
    async def account(
        self,
        visit: NamedDependency[Visit],
        period: Period = "24h",
        outcome: OutcomeParam = None,
        key: KeyParam = None,
        before: BeforeParam = None,
    ) -> Template:
        seen = await usage_viewer(visit)
        return await self._page(
            visit, seen, key=None, range_=period, outcome=outcome, key_filter=key or None, before=before
        )

    @get("/{key_id:str}")
    async def key(
        self,
        key_id: FromPath[str],
        visit: NamedDependency[Visit],
        period: Period = "24h",
        outcome: OutcomeParam = None,
        before: BeforeParam = None,
    ) -> Template:
        seen = await usage_viewer(visit)
        state = await visit.application.key(key_id, account_id=seen.account_id)
        return await self._page(
            visit, seen, key=state, range_=period, outcome=outcome, key_filter=None, before=before
        )


def _stamp(moment: datetime, bucket: str) -> str:
    if bucket == "day":
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M UTC")
