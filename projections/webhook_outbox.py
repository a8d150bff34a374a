"""The webhook outbox: every account's webhook endpoints, and the messages the lifecycle log produces.

``proj_webhook_endpoints`` is each endpoint's current configuration (never its secret, which lives
encrypted in ``webhook_secrets``). ``proj_webhook_messages`` holds one row per message a lifecycle
event produces for its account (``webhook.payloads.messages_for``), keyed by a deterministic id and
ordered by the event's position. Both are pure functions of the log, so a rebuild reproduces them and
``rebuild --verify`` can compare them. Fan-out to endpoints and everything about sending lives with the
dispatcher (``webhooks/dispatcher.py``), in tables a rebuild never touches: a replay never re-sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import msgspec
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from projections._upsert import insert_many
from reservekit.clock import to_micros
from reservekit.domain.events import (
    RecordedEvent,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookEndpointDisabled,
    WebhookEndpointSecretRolled,
    WebhookEndpointUpdated,
)
from reservekit.projecting.spec import Projection
from reservekit.webhooks.payloads import EVENTS_WITH_MESSAGES, messages_for


class OutboxTables(NamedTuple):
    endpoints: Table
    messages: Table


def message_columns() -> list[Column[object]]:
    return [
        Column("message_id", String(128), primary_key=True),
        Column("position", BigInteger, nullable=False),
        Column("account_id", String(64), nullable=False),
        Column("event_type", String(64), nullable=False),
        Column("severity", String(16)),
        Column("payload", Text, nullable=False),
    ]


_MESSAGE_COLUMNS = tuple(column.name for column in message_columns())  # the order apply builds rows in


def define(metadata: MetaData, suffix: str) -> OutboxTables:
    endpoints = f"proj_webhook_endpoints{suffix}"
    messages = f"proj_webhook_messages{suffix}"
    return OutboxTables(
        Table(
            endpoints,
            metadata,
            Column("endpoint_id", String(64), primary_key=True),
            Column("account_id", String(64), nullable=False),
            Column("url", Text, nullable=False),
            Column("event_types", Text, nullable=False),
            Column("min_flag_severity", String(16), nullable=False),
            Column("enabled", Boolean, nullable=False),
            Column("deleted", Boolean, nullable=False),
            Column("description", Text),
            Column("secret_version", Integer, nullable=False),
            Column("disabled_reason", Text),
            Column("created_at_us", BigInteger, nullable=False),
            Column("updated_at_us", BigInteger, nullable=False),
            Column("created_position", BigInteger, nullable=False),
            Column("position", BigInteger, nullable=False),
            Index(f"ix_{endpoints}_account", "account_id", "endpoint_id"),
        ),
        Table(messages, metadata, *message_columns(), Index(f"ix_{messages}_position", "position")),
    )


def encode_types(event_types: Sequence[str]) -> str:
    return msgspec.json.encode(sorted(event_types)).decode()


async def apply(conn: AsyncConnection, tables: OutboxTables, batch: Sequence[RecordedEvent]) -> None:
    endpoints, messages = tables
    rows: list[tuple[object, ...]] = []
    for recorded in batch:
        event = recorded.data
        if isinstance(event, _ENDPOINT_EVENTS):  # rare: the instant is converted only for these
            await _apply_to_endpoint(conn, endpoints, recorded, event)
        position = recorded.position
        for m in messages_for(recorded):
            rows.append((m.message_id, position, m.account_id, m.event_type, m.severity, m.payload))
    await insert_many(conn, messages, _MESSAGE_COLUMNS, rows)


async def _apply_to_endpoint(
    conn: AsyncConnection, endpoints: Table, recorded: RecordedEvent, event: EndpointEvent
) -> None:
    at_us = to_micros(recorded.recorded_at)
    moved = {"updated_at_us": at_us, "position": recorded.position}
    if isinstance(event, WebhookEndpointCreated):
        await conn.execute(
            insert(endpoints).values(
                endpoint_id=event.endpoint_id,
                account_id=event.account_id,
                url=event.url,
                event_types=encode_types(event.event_types),
                min_flag_severity=event.min_flag_severity,
                enabled=event.enabled,
                deleted=False,
                description=event.description,
                secret_version=1,
                disabled_reason=None,
                created_at_us=at_us,
                created_position=recorded.position,
                **moved,
            )
        )
        return
    target = endpoints.c.endpoint_id == event.endpoint_id
    if isinstance(event, WebhookEndpointUpdated):
        changes: dict[str, object] = {
            name: getattr(event, name)
            for name in ("url", "min_flag_severity", "enabled")
            if getattr(event, name) is not None
        }
        if event.event_types is not None:
            changes["event_types"] = encode_types(event.event_types)
        if event.description is not None:
            changes["description"] = event.description or None
        if event.enabled:
            changes["disabled_reason"] = None
        await conn.execute(update(endpoints).where(target).values(**changes, **moved))
    elif isinstance(event, WebhookEndpointSecretRolled):
        await conn.execute(
            update(endpoints).where(target).values(secret_version=event.secret_version, **moved)
        )
    elif isinstance(event, WebhookEndpointDisabled):
        await conn.execute(
            update(endpoints).where(target).values(enabled=False, disabled_reason=event.reason, **moved)
        )
    elif isinstance(event, WebhookEndpointDeleted):
        await conn.execute(update(endpoints).where(target).values(enabled=False, deleted=True, **moved))


_ENDPOINT_EVENTS = (
    WebhookEndpointCreated,
    WebhookEndpointUpdated,
    WebhookEndpointSecretRolled,
    WebhookEndpointDisabled,
    WebhookEndpointDeleted,
)
EndpointEvent = (
    WebhookEndpointCreated
    | WebhookEndpointUpdated
    | WebhookEndpointSecretRolled
    | WebhookEndpointDisabled
    | WebhookEndpointDeleted
)


PROJECTION = Projection(
    name="webhook_outbox",
    version=1,
    define=define,
    apply=apply,
    description="webhook endpoints and the messages lifecycle events produce for them",
    folds=tuple(dict.fromkeys(_ENDPOINT_EVENTS + EVENTS_WITH_MESSAGES)),
)
LIVE = PROJECTION.live
