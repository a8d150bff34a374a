"""Webhook messages the usage log produces: ``rate_limit.reached``, once per account per minute.

Each minute in which an account's plan quota refused a request yields one message, keyed by
(account, minute) so later refusals in that minute add nothing. Positions are usage-log positions;
the dispatcher follows this outbox with its own cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import Index, MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from projections._upsert import dialect_insert
from projections.webhook_outbox import message_columns
from reservekit.clock import from_micros
from reservekit.projecting.sources import USAGE
from reservekit.projecting.spec import Projection
from reservekit.usage.records import UsageRecord
from reservekit.webhooks.payloads import envelope

MINUTE_US = 60_000_000
EVENT_TYPE = "rate_limit.reached"


class UsageOutboxTables(NamedTuple):
    messages: Table


def define(metadata: MetaData, suffix: str) -> UsageOutboxTables:
    name = f"proj_webhook_usage_messages{suffix}"
    return UsageOutboxTables(
        Table(name, metadata, *message_columns(), Index(f"ix_{name}_position", "position"))
    )


async def apply(conn: AsyncConnection, tables: UsageOutboxTables, batch: Sequence[UsageRecord]) -> None:
    rows: dict[str, dict[str, object]] = {}
    for record in batch:
        if record.outcome != "rate_limited" or record.account_id is None:
            continue
        minute_us = record.occurred_at_us - record.occurred_at_us % MINUTE_US
        message_id = f"rl_{record.account_id}.{minute_us // MINUTE_US}"
        if message_id in rows:
            continue
        data = {
            "object": "rate_limit",
            "account_id": record.account_id,
            "key_id": record.key_id,
            "minute": from_micros(minute_us).isoformat().replace("+00:00", "Z"),
            "route": f"{record.method} {record.route}",
            "usage_position": record.position,
        }
        rows[message_id] = {
            "message_id": message_id,
            "position": record.position,
            "account_id": record.account_id,
            "event_type": EVENT_TYPE,
            "severity": None,
            "payload": envelope(EVENT_TYPE, from_micros(record.occurred_at_us), data),
        }
    if rows:
        statement = dialect_insert(conn, tables.messages).on_conflict_do_nothing(
            index_elements=["message_id"]
        )
        await conn.execute(statement, list(rows.values()))


PROJECTION = Projection(
    name="webhook_usage_outbox",
    version=1,
    define=define,
    apply=apply,
    description="rate_limit.reached webhook messages from the usage log",
    source=USAGE,
)
LIVE = PROJECTION.live
