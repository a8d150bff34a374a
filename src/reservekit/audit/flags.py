"""Reading suspicious-usage flags (both flag projections, with their resolutions).

A flag is ``resolved`` if its latest resolution was recorded at or after its last hit, else ``open``:
a pattern that recurs after a resolution reopens its flag. Scoping: ``account_id=None`` means the
caller sees every flag (platform:admin); otherwise only that account's flags exist for the caller,
and another account's flag is reported exactly like a missing one (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import ColumnElement, Select, and_, case, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from projections import leak_flags, usage_flags
from reservekit.clock import from_micros
from reservekit.db import read_transaction
from reservekit.domain.errors import NotFound
from reservekit.usecases.ports import FlagLookup, FlagOwner

FlagStatus = Literal["open", "resolved"]


class FlagResolutionOut(msgspec.Struct, kw_only=True):
    """``resolved_by``: the key that resolved it through the API, the member through the dashboard, or
    the source (``cli``); ``resolved_by_account``: that key's or member's account."""

    resolution: str
    note: str | None
    resolved_at: datetime
    resolved_by: str | None
    resolved_by_account: str | None


class FlagOut(msgspec.Struct, kw_only=True):
    id: str
    rule: str
    severity: str
    status: FlagStatus
    account_id: str | None
    key_id: str | None
    client_ip: str | None
    subject: str
    first_seen: datetime
    last_seen: datetime
    hits: int
    evidence: dict[str, Any]
    resolution: FlagResolutionOut | None


class FlagQuery(msgspec.Struct, kw_only=True):
    """Filters; ``since``/``until`` pick flags active in [since, until): last hit >= since, first < until."""

    account_id: str | None = None
    key_id: str | None = None
    rule: str | None = None
    severity: str | None = None
    status: FlagStatus | None = None
    since_us: int | None = None
    until_us: int | None = None


def _flags_select() -> Select[Any]:
    resolutions = leak_flags.LIVE.resolutions
    both = union_all(select(usage_flags.LIVE.flags), select(leak_flags.LIVE.flags)).subquery("flags")
    resolved = and_(
        resolutions.c.resolved_at_us.is_not(None), resolutions.c.resolved_at_us >= both.c.last_seen_us
    )
    status = case((resolved, literal("resolved")), else_=literal("open")).label("status")
    return (
        select(
            both,
            status,
            resolutions.c.resolution,
            resolutions.c.note,
            resolutions.c.resolved_at_us,
            resolutions.c.actor,
            resolutions.c.actor_account_id,
        )
        .select_from(both.outerjoin(resolutions, resolutions.c.flag_id == both.c.flag_id))
        .subquery("listed")
        .select()
    )


def _row_to_flag(row: Any) -> FlagOut:
    m = row._mapping
    resolution = None
    if m["resolution"] is not None:
        resolution = FlagResolutionOut(
            resolution=m["resolution"],
            note=m["note"],
            resolved_at=from_micros(int(m["resolved_at_us"])),
            resolved_by=m["actor"],
            resolved_by_account=m["actor_account_id"],
        )
    evidence: dict[str, Any] = msgspec.json.decode(m["evidence"])
    return FlagOut(
        id=m["flag_id"],
        rule=m["rule"],
        severity=m["severity"],
        status=m["status"],
        account_id=m["account_id"],
        key_id=m["key_id"],
        client_ip=m["client_ip"],
        subject=m["subject"],
        first_seen=from_micros(int(m["first_seen_us"])),
        last_seen=from_micros(int(m["last_seen_us"])),
        hits=int(m["hits"]),
        evidence=evidence,
        resolution=resolution,
    )


FlagPosition = tuple[int, str]
"""Where a page of flags ends: (first hit in microseconds, flag id)."""


async def list_flags(
    conn: AsyncConnection, query: FlagQuery, *, after: FlagPosition | None = None, limit: int = 50
) -> tuple[list[FlagOut], FlagPosition | None]:
    """Newest first (by first hit, then id); returns the page and where the next one starts, if any."""
    base = _flags_select()
    c = base.selected_columns
    conditions: list[ColumnElement[bool]] = []
    if query.account_id is not None:
        conditions.append(c.account_id == query.account_id)
    for name in ("key_id", "rule", "severity", "status"):
        value = getattr(query, name)
        if value is not None:
            conditions.append(c[name] == value)
    if query.since_us is not None:
        conditions.append(c.last_seen_us >= query.since_us)
    if query.until_us is not None:
        conditions.append(c.first_seen_us < query.until_us)
    if after is not None:
        first, flag_id = after
        conditions.append(or_(c.first_seen_us < first, and_(c.first_seen_us == first, c.flag_id < flag_id)))
    statement = base.where(*conditions).order_by(c.first_seen_us.desc(), c.flag_id.desc()).limit(limit + 1)
    rows = list(await conn.execute(statement))
    page = [_row_to_flag(row) for row in rows[:limit]]
    next_cursor: FlagPosition | None = None
    if len(rows) > limit:
        last = rows[limit - 1]._mapping
        next_cursor = (int(last["first_seen_us"]), str(last["flag_id"]))
    return page, next_cursor


async def get_flag(conn: AsyncConnection, flag_id: str, *, account_id: str | None) -> FlagOut:
    base = _flags_select()
    row = (await conn.execute(base.where(base.selected_columns.flag_id == flag_id))).first()
    if row is None or (account_id is not None and row._mapping["account_id"] != account_id):
        raise NotFound(f"flag {flag_id} not found", field="flag_id")
    return _row_to_flag(row)


def flag_lookup(engine: AsyncEngine) -> FlagLookup:
    """What ``ResolveFlag`` needs to know about a flag: that the caller may see it, and whose it is."""

    async def flag_for(flag_id: str, account_id: str | None) -> FlagOwner:
        async with read_transaction(engine) as conn:
            flag = await get_flag(conn, flag_id, account_id=account_id)
        return FlagOwner(flag.id, flag.account_id)

    return flag_for
