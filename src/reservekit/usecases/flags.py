"""Reading and resolving suspicious-usage flags (both flag projections, with their resolutions).

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
from sqlalchemy.ext.asyncio import AsyncConnection

from projections import leak_flags, usage_flags
from reservekit.clock import from_micros
from reservekit.db import read_transaction
from reservekit.domain.errors import Conflict, InvalidInput, NotFound
from reservekit.events.store import ConcurrencyConflict, StreamWrite
from reservekit.events.types import FlagResolved, Metadata
from reservekit.usecases.context import Authority

Resolution = Literal["false_positive", "confirmed", "mitigated"]
RESOLUTIONS: frozenset[str] = frozenset({"false_positive", "confirmed", "mitigated"})
FlagStatus = Literal["open", "resolved"]


class FlagResolutionOut(msgspec.Struct, kw_only=True):
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


def _decode_cursor(cursor: str) -> tuple[int, str]:
    first, _, flag_id = cursor.partition(".")
    if not first.isdigit() or not flag_id.startswith("flg_"):
        raise InvalidInput("cursor is not one this API returned", field="cursor")
    return int(first), flag_id


async def list_flags(
    conn: AsyncConnection, query: FlagQuery, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[FlagOut], str | None]:
    """Newest first (by first hit, then id); returns the page and the next cursor, if any."""
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
    if cursor:
        first, flag_id = _decode_cursor(cursor)
        conditions.append(or_(c.first_seen_us < first, and_(c.first_seen_us == first, c.flag_id < flag_id)))
    statement = base.where(*conditions).order_by(c.first_seen_us.desc(), c.flag_id.desc()).limit(limit + 1)
    rows = list(await conn.execute(statement))
    page = [_row_to_flag(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]._mapping
        next_cursor = f"{int(last['first_seen_us'])}.{last['flag_id']}"
    return page, next_cursor


async def get_flag(conn: AsyncConnection, flag_id: str, *, account_id: str | None) -> FlagOut:
    base = _flags_select()
    row = (await conn.execute(base.where(base.selected_columns.flag_id == flag_id))).first()
    if row is None or (account_id is not None and row._mapping["account_id"] != account_id):
        raise NotFound(f"flag {flag_id} not found", field="flag_id")
    return _row_to_flag(row)


async def resolve_flag(
    authority: Authority,
    *,
    flag_id: str,
    account_id: str | None,
    resolution: str,
    note: str | None,
    metadata: Metadata,
) -> None:
    """Append ``FlagResolved`` (stream id = the flag id) recording who resolved it and why."""
    if resolution not in RESOLUTIONS:
        raise InvalidInput(f"resolution must be one of {', '.join(sorted(RESOLUTIONS))}", field="resolution")
    async with read_transaction(authority.store.engine) as conn:
        flag = await get_flag(conn, flag_id, account_id=account_id)
    history = await authority.store.read_stream(flag_id)
    version = history[-1].stream_version if history else 0
    event = FlagResolved(
        flag_id=flag_id,
        account_id=flag.account_id or metadata.actor_account_id or "",
        resolution=resolution,
        note=note,
    )
    try:
        await authority.store.append([StreamWrite(flag_id, version, [event])], metadata)
    except ConcurrencyConflict:
        raise Conflict(f"flag {flag_id} was resolved by a concurrent request; nothing was written") from None
