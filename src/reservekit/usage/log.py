"""Appending usage rows: one bulk insert per batch, positions gapless and in commit order.

Like the lifecycle log, appends hold a log-wide lock (a second advisory lock on PostgreSQL, the write
lock on SQLite) so a projection that has read position N has seen every row before N.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.db import is_sqlite, write_transaction
from reservekit.usage.records import UsageRecord, usage_log

_USAGE_LOCK_KEY = 0x5253_4B33


async def append_usage(
    engine: AsyncEngine, records: Sequence[UsageRecord], *, recorded_at_us: int
) -> list[UsageRecord]:
    """Write ``records`` as one transaction; returns them with their positions."""
    if not records:
        return []
    async with write_transaction(engine) as conn:
        if not is_sqlite(conn):
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _USAGE_LOCK_KEY})
        head = int(await conn.scalar(select(func.coalesce(func.max(usage_log.c.position), 0))) or 0)
        placed = [
            msgspec.structs.replace(record, position=head + offset, recorded_at_us=recorded_at_us)
            for offset, record in enumerate(records, start=1)
        ]
        await conn.execute(insert(usage_log), [msgspec.structs.asdict(record) for record in placed])
    return placed
