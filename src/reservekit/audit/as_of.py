"""Every key's state at a past instant, folded from the log alone (no projection involved)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.clock import to_micros
from reservekit.db import read_transaction
from reservekit.domain.keys import KeyState, evolve_key
from reservekit.events.store import row_to_event
from reservekit.events.tables import events

_KEY_EVENTS = ("key_created", "key_revoked", "key_rotated", "key_updated", "leak_reported")


async def keys_as_of(engine: AsyncEngine, moment: datetime, *, account_id: str | None) -> list[KeyState]:
    """States as recorded at ``moment``; status is then judged at ``moment`` too (expiry, grace ends)."""
    query = (
        select(events)
        .where(events.c.type.in_(_KEY_EVENTS), events.c.recorded_at_us <= to_micros(moment))
        .order_by(events.c.position)
    )
    if account_id is not None:
        query = query.where(events.c.account_id == account_id)
    states: dict[str, KeyState] = {}
    async with read_transaction(engine) as conn:
        result = await conn.stream(query.execution_options(yield_per=1000))
        async for row in result:
            recorded = row_to_event(row)
            state = evolve_key(states.get(recorded.stream_id), recorded)
            if state is not None:
                states[recorded.stream_id] = state
    return sorted(states.values(), key=lambda s: s.key_id)
