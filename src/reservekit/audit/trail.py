"""Filtered, paginated reads of both logs, scoped to one account unless the caller is an operator."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.clock import to_micros
from reservekit.db import read_transaction
from reservekit.domain.events import RecordedEvent
from reservekit.events.store import row_to_event
from reservekit.events.tables import events
from reservekit.usage.records import UsageRecord, id_matches, usage_log


class EventFilter(msgspec.Struct, kw_only=True):
    account_id: str | None = None  # None: every account (operators only)
    stream_id: str | None = None
    type: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0
    limit: int = 100
    # Newest first (the dashboard's pages), optionally from before a position: the previous page's last.
    newest_first: bool = False
    before: int | None = None


class UsageFilter(msgspec.Struct, kw_only=True):
    account_id: str | None = None
    key_id: str | None = None
    outcome: str | None = None
    client_ip: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0
    limit: int = 100
    newest_first: bool = False
    before: int | None = None


def _like_literal(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def read_events(engine: AsyncEngine, f: EventFilter) -> list[RecordedEvent]:
    query = select(events).where(events.c.position > f.after)
    if f.account_id is not None:
        query = query.where(events.c.account_id == f.account_id)
    if f.stream_id:
        query = query.where(events.c.stream_id == f.stream_id)
    if f.type:
        query = query.where(events.c.type == f.type)
    if f.actor:
        # Metadata is canonical compact JSON; the actor is a key id or an account id.
        needle = _like_literal(f.actor)
        query = query.where(
            or_(
                events.c.metadata.like(f'%"actor_key_id":"{needle}"%', escape="\\"),
                events.c.metadata.like(f'%"actor_account_id":"{needle}"%', escape="\\"),
                events.c.metadata.like(f'%"actor_member_id":"{needle}"%', escape="\\"),
            )
        )
    if f.since:
        query = query.where(events.c.recorded_at_us >= to_micros(f.since))
    if f.until:
        query = query.where(events.c.recorded_at_us < to_micros(f.until))
    async with read_transaction(engine) as conn:
        if f.before is not None:
            query = query.where(events.c.position < f.before)
        order = events.c.position.desc() if f.newest_first else events.c.position
        result = await conn.execute(query.order_by(order).limit(f.limit))
        return [row_to_event(row) for row in result]


def usage_query(f: UsageFilter, dialect: str) -> Select[Any]:
    """The statement ``read_usage`` runs (its plan is tested: tests/integration/test_usage_indexes.py)."""
    query = select(*usage_log.columns).where(usage_log.c.position > f.after)
    if f.account_id is not None:
        query = query.where(id_matches(usage_log.c.account_id, f.account_id, dialect))
    if f.key_id:
        query = query.where(id_matches(usage_log.c.key_id, f.key_id, dialect))
    if f.outcome:
        query = query.where(usage_log.c.outcome == f.outcome)
    if f.client_ip:
        query = query.where(usage_log.c.client_ip == f.client_ip)
    if f.since:
        query = query.where(usage_log.c.occurred_at_us >= to_micros(f.since))
    if f.until:
        query = query.where(usage_log.c.occurred_at_us < to_micros(f.until))
    if f.before is not None:
        query = query.where(usage_log.c.position < f.before)
    order = usage_log.c.position.desc() if f.newest_first else usage_log.c.position
    return query.order_by(order).limit(f.limit)


async def read_usage(engine: AsyncEngine, f: UsageFilter) -> list[UsageRecord]:
    query = usage_query(f, engine.dialect.name)
    async with read_transaction(engine) as conn:
        result = await conn.execute(query)
        return [UsageRecord(**row._mapping) for row in result]
