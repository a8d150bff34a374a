"""Fan-out: turning outbox messages and new usage flags into one delivery per subscribed endpoint.

Each step is one transaction that also records how far it got, so a message is fanned out exactly
once whichever replica (or CLI command) runs it, and a crash redoes the step whole or not at all.

- The two outbox projections are followed by position with a cursor per outbox
  (``webhook_dispatch_cursors``). A lifecycle message goes only to endpoints created before its
  position.
- Suspicious-usage flags come from the ``usage_flags`` projection, whose rows have no log position:
  a flag id is fanned out when first seen and remembered in ``webhook_seen_flags``. When that
  projection's version changes (new thresholds replay the usage log into new flag ids), the flags
  present are taken as a baseline without sending, so a replay never floods endpoints with history.

Deliveries are inserted one by one in message order, so their ``seq`` (the per-endpoint send order)
follows log position within each log.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Table, exists, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from projections import usage_flags, webhook_outbox, webhook_usage_outbox
from projections._upsert import dialect_insert
from reservekit.clock import Clock, from_micros, to_micros
from reservekit.db import is_sqlite, read_transaction, write_transaction
from reservekit.domain.webhooks import wants
from reservekit.events.tables import projection_checkpoints
from reservekit.webhooks.deliveries import delivery_id_for
from reservekit.webhooks.payloads import envelope, iso
from reservekit.webhooks.tables import webhook_deliveries, webhook_dispatch_cursors, webhook_seen_flags

_US = 1_000_000
OUTBOXES: tuple[tuple[str, Table, bool], ...] = (
    # (cursor name, outbox table, whether an endpoint must predate the message's log position)
    ("events", webhook_outbox.LIVE.messages, True),
    ("usage", webhook_usage_outbox.LIVE.messages, False),
)
_FLAGS_CURSOR = "usage_flags_version"


class Fanout:
    def __init__(
        self, engine: AsyncEngine, clock: Clock, *, give_up_after_seconds: float, batch: int
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._give_up_us = int(give_up_after_seconds * _US)
        self._batch = batch
        # The usage_flags checkpoint (version, position) after the last full pass: while it has not
        # moved there can be no new flag, so idle polls skip the scan for unseen flags.
        self._flags_mark: tuple[int, int] | None = None

    async def run(self) -> None:
        # One read first: an idle replica polls without ever taking the write lock.
        work, flags_mark = await self._anything_to_do()
        if not work:
            self._flags_mark = flags_mark
            return
        for name, table, ordered in OUTBOXES:
            while await self.outbox(name, table, ordered=ordered):
                pass
        while await self.usage_flags():
            pass
        async with write_transaction(self._engine) as conn:
            await self._cancel_deleted(conn)
        self._flags_mark = flags_mark

    async def _anything_to_do(self) -> tuple[bool, tuple[int, int] | None]:
        """Whether a pass has work, and the usage_flags checkpoint (version, position) it saw."""
        cursors = webhook_dispatch_cursors
        flags = usage_flags.LIVE.flags
        endpoints = webhook_outbox.LIVE.endpoints
        d = webhook_deliveries
        checkpoints = projection_checkpoints
        async with read_transaction(self._engine) as conn:
            stored = {row.name: int(row.position) for row in await conn.execute(select(cursors))}
            checkpoint = (
                await conn.execute(
                    select(checkpoints.c.version, checkpoints.c.position).where(
                        checkpoints.c.name == usage_flags.NAME
                    )
                )
            ).first()
            mark = (int(checkpoint.version), int(checkpoint.position)) if checkpoint is not None else None
            for name, table, _ordered in OUTBOXES:
                beyond = select(table.c.position).where(table.c.position > stored.get(name, 0)).limit(1)
                if await conn.scalar(beyond) is not None:
                    return True, mark
            if mark is not None and mark[0] != stored.get(_FLAGS_CURSOR, -1):
                return True, mark
            if mark != self._flags_mark:
                seen = exists().where(webhook_seen_flags.c.flag_id == flags.c.flag_id)
                if await conn.scalar(select(flags.c.flag_id).where(~seen).limit(1)) is not None:
                    return True, mark
            deleted = select(endpoints.c.endpoint_id).where(endpoints.c.deleted.is_(True))
            orphaned = select(d.c.seq).where(d.c.status == "pending", d.c.endpoint_id.in_(deleted)).limit(1)
            return await conn.scalar(orphaned) is not None, mark

    async def outbox(self, name: str, outbox: Table, *, ordered: bool) -> int:
        async with write_transaction(self._engine) as conn:
            cursor = await _lock_cursor(conn, name, 0)
            rows = list(
                await conn.execute(
                    select(outbox)
                    .where(outbox.c.position > cursor)
                    .order_by(outbox.c.position, outbox.c.message_id)
                    .limit(self._batch + 1)
                )
            )
            if not rows:
                return 0
            if len(rows) > self._batch:  # never split the messages of one position across steps
                last = rows[-1].position
                rows = [row for row in rows if row.position < last] or [r for r in rows if r.position == last]
            await self._deliver_to_subscribers(
                conn,
                [
                    (row.account_id, row.message_id, row.event_type, row.severity, row.payload, row.position)
                    for row in rows
                ],
                ordered=ordered,
            )
            await _move_cursor(conn, name, int(rows[-1].position))
        return len(rows)

    async def usage_flags(self) -> int:
        flags = usage_flags.LIVE.flags
        seen = webhook_seen_flags
        async with write_transaction(self._engine) as conn:
            baseline_version = await _lock_cursor(conn, _FLAGS_CURSOR, -1)
            version = await conn.scalar(
                select(projection_checkpoints.c.version).where(
                    projection_checkpoints.c.name == usage_flags.NAME
                )
            )
            if version is None:
                return 0
            rows = list(
                await conn.execute(
                    select(flags)
                    .where(~exists().where(seen.c.flag_id == flags.c.flag_id))
                    .order_by(flags.c.first_seen_us, flags.c.flag_id)
                    .limit(self._batch)
                )
            )
            now_us = to_micros(self._clock.now())
            if rows:
                await conn.execute(
                    dialect_insert(conn, seen).on_conflict_do_nothing(),
                    [{"flag_id": row.flag_id, "seen_at_us": now_us} for row in rows],
                )
            if int(version) != baseline_version:
                if not rows:  # the whole table is now the baseline: send what appears from here on
                    await _move_cursor(conn, _FLAGS_CURSOR, int(version))
                return len(rows)
            await self._deliver_to_subscribers(
                conn,
                [
                    (row.account_id, row.flag_id, "flag.raised", row.severity, _flag_payload(row), 0)
                    for row in rows
                    if row.account_id is not None
                ],
                ordered=False,
            )
        return len(rows)

    async def _deliver_to_subscribers(
        self,
        conn: AsyncConnection,
        messages: list[tuple[str, str, str, str | None, str, int]],
        *,
        ordered: bool,
    ) -> None:
        if not messages:
            return
        endpoints = webhook_outbox.LIVE.endpoints
        accounts = sorted({m[0] for m in messages})
        subscribed = list(
            await conn.execute(
                select(endpoints).where(
                    endpoints.c.account_id.in_(accounts),
                    endpoints.c.enabled.is_(True),
                    endpoints.c.deleted.is_(False),
                )
            )
        )
        types = {e.endpoint_id: tuple(msgspec.json.decode(e.event_types, type=list[str])) for e in subscribed}
        now_us = to_micros(self._clock.now())
        statement = dialect_insert(conn, webhook_deliveries).on_conflict_do_nothing(
            index_elements=["endpoint_id", "message_id"]
        )
        for account_id, message_id, event_type, severity, payload, position in messages:
            for endpoint in subscribed:
                if endpoint.account_id != account_id or (ordered and endpoint.created_position >= position):
                    continue
                if not wants(types[endpoint.endpoint_id], endpoint.min_flag_severity, event_type, severity):
                    continue
                await conn.execute(
                    statement,
                    {
                        "delivery_id": delivery_id_for(endpoint.endpoint_id, message_id),
                        "endpoint_id": endpoint.endpoint_id,
                        "account_id": account_id,
                        "message_id": message_id,
                        "event_type": event_type,
                        "payload": payload,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at_us": now_us,
                        "expires_at_us": now_us + self._give_up_us,
                        "created_at_us": now_us,
                    },
                )

    async def _cancel_deleted(self, conn: AsyncConnection) -> None:
        endpoints = webhook_outbox.LIVE.endpoints
        deleted = select(endpoints.c.endpoint_id).where(endpoints.c.deleted.is_(True))
        d = webhook_deliveries
        await conn.execute(
            update(d)
            .where(d.c.status == "pending", d.c.endpoint_id.in_(deleted))
            .values(status="cancelled", finished_at_us=to_micros(self._clock.now()), lease_until_us=None)
        )


def _flag_payload(row: Row[Any]) -> str:
    first_seen = from_micros(int(row.first_seen_us))
    data = {
        "object": "flag",
        "id": row.flag_id,
        "rule": row.rule,
        "severity": row.severity,
        "account_id": row.account_id,
        "key_id": row.key_id,
        "subject": row.subject,
        "first_seen": iso(first_seen),
        "evidence": msgspec.json.decode(row.evidence),
    }
    return envelope("flag.raised", first_seen, data)


async def _lock_cursor(conn: AsyncConnection, name: str, initial: int) -> int:
    cursors = webhook_dispatch_cursors
    await conn.execute(
        dialect_insert(conn, cursors).values(name=name, position=initial).on_conflict_do_nothing()
    )
    query = select(cursors.c.position).where(cursors.c.name == name)
    if not is_sqlite(conn):
        query = query.with_for_update()
    return int((await conn.execute(query)).scalar_one())


async def _move_cursor(conn: AsyncConnection, name: str, position: int) -> None:
    cursors = webhook_dispatch_cursors
    await conn.execute(update(cursors).where(cursors.c.name == name).values(position=position))
