"""Reading endpoints and deliveries, retrying a delivery, and sending a test event.

Endpoint listings come from the ``webhook_outbox`` projection plus the dispatcher's health row (an
endpoint is ``failing`` after ``failing_after_errors`` consecutive failed attempts). Deliveries and
their attempts come from the dispatcher's own tables.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from projections import webhook_outbox
from reservekit.clock import from_micros, to_micros
from reservekit.db import read_transaction, write_transaction
from reservekit.domain.errors import Conflict, NotFound
from reservekit.domain.webhooks import TEST_EVENT_TYPE, EndpointState
from reservekit.ids import new_id
from reservekit.webhooks.endpoints import Webhooks, load_endpoint
from reservekit.webhooks.payloads import envelope
from reservekit.webhooks.tables import webhook_attempts, webhook_deliveries, webhook_endpoint_health

EndpointStatus = Literal["enabled", "failing", "disabled"]


class EndpointOut(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    url: str
    event_types: list[str]
    min_flag_severity: str
    enabled: bool
    status: EndpointStatus
    disabled_reason: str | None
    description: str | None
    secret_version: int
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime


class EndpointWithSecretOut(EndpointOut, kw_only=True):
    """Create and roll-secret responses only: ``secret`` (``whsec_…``) is shown this once."""

    secret: str


class AttemptOut(msgspec.Struct, kw_only=True):
    attempt: int
    started_at: datetime
    latency_ms: float
    status_code: int | None
    outcome: str
    error: str | None


class DeliveryOut(msgspec.Struct, kw_only=True):
    id: str
    endpoint_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    attempt_log: list[AttemptOut]


def delivery_id_for(endpoint_id: str, message_id: str) -> str:
    """The ``webhook-id`` header: derived, so a delivery keeps its id across retries and restarts."""
    return "msg_" + hashlib.sha256(f"{endpoint_id}|{message_id}".encode()).hexdigest()[:26]


async def failures_of(conn: AsyncConnection, endpoint_ids: list[str]) -> dict[str, int]:
    if not endpoint_ids:
        return {}
    health = webhook_endpoint_health
    rows = await conn.execute(
        select(health.c.endpoint_id, health.c.consecutive_failures).where(
            health.c.endpoint_id.in_(endpoint_ids)
        )
    )
    return {row.endpoint_id: int(row.consecutive_failures) for row in rows}


def endpoint_out(state: EndpointState, failures: int, failing_after: int) -> EndpointOut:
    status: EndpointStatus = "disabled" if not state.enabled else "enabled"
    if state.enabled and failures >= failing_after:
        status = "failing"
    return EndpointOut(
        id=state.endpoint_id,
        account_id=state.account_id,
        url=state.url,
        event_types=list(state.event_types),
        min_flag_severity=state.min_flag_severity,
        enabled=state.enabled,
        status=status,
        disabled_reason=state.disabled_reason,
        description=state.description,
        secret_version=state.secret_version,
        consecutive_failures=failures,
        created_at=state.created_at,
        updated_at=state.updated_at,
    )


def _row_to_state(row: Any) -> EndpointState:
    m = row._mapping
    return EndpointState(
        endpoint_id=m["endpoint_id"],
        account_id=m["account_id"],
        url=m["url"],
        event_types=tuple(msgspec.json.decode(m["event_types"], type=list[str])),
        min_flag_severity=m["min_flag_severity"],
        enabled=bool(m["enabled"]),
        description=m["description"],
        created_at=from_micros(int(m["created_at_us"])),
        updated_at=from_micros(int(m["updated_at_us"])),
        secret_version=int(m["secret_version"]),
        disabled_reason=m["disabled_reason"],
        deleted=bool(m["deleted"]),
        position=int(m["position"]),
    )


async def list_endpoints(
    conn: AsyncConnection, account_id: str, *, after: str | None = None, limit: int = 50
) -> list[EndpointState]:
    endpoints = webhook_outbox.LIVE.endpoints
    query = select(endpoints).where(endpoints.c.account_id == account_id, endpoints.c.deleted.is_(False))
    if after:
        query = query.where(endpoints.c.endpoint_id > after)
    rows = await conn.execute(query.order_by(endpoints.c.endpoint_id).limit(limit))
    return [_row_to_state(row) for row in rows]


async def list_deliveries(
    conn: AsyncConnection, endpoint_id: str, *, before_seq: int | None = None, limit: int = 50
) -> tuple[list[DeliveryOut], int | None]:
    """Newest first, each with its attempts, and the last delivery's sequence number if more follow."""
    d = webhook_deliveries
    query = select(d).where(d.c.endpoint_id == endpoint_id)
    if before_seq is not None:
        query = query.where(d.c.seq < before_seq)
    rows = list(await conn.execute(query.order_by(d.c.seq.desc()).limit(limit + 1)))
    page = rows[:limit]
    ids = [row.delivery_id for row in page]
    attempts: dict[str, list[AttemptOut]] = {delivery_id: [] for delivery_id in ids}
    if ids:
        a = webhook_attempts
        for row in await conn.execute(select(a).where(a.c.delivery_id.in_(ids)).order_by(a.c.id)):
            attempts[row.delivery_id].append(
                AttemptOut(
                    attempt=int(row.attempt),
                    started_at=from_micros(int(row.started_at_us)),
                    latency_ms=float(row.latency_ms),
                    status_code=row.status_code,
                    outcome=row.outcome,
                    error=row.error,
                )
            )
    out = [
        DeliveryOut(
            id=row.delivery_id,
            endpoint_id=row.endpoint_id,
            event_type=row.event_type,
            status=row.status,
            attempts=int(row.attempts),
            next_attempt_at=from_micros(int(row.next_attempt_at_us)) if row.status == "pending" else None,
            created_at=from_micros(int(row.created_at_us)),
            finished_at=from_micros(int(row.finished_at_us)) if row.finished_at_us is not None else None,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            attempt_log=attempts[row.delivery_id],
        )
        for row in page
    ]
    return out, (int(page[-1].seq) if len(rows) > limit else None)


async def retry_delivery(
    webhooks: Webhooks, *, account_id: str | None, endpoint_id: str, delivery_id: str
) -> None:
    """Queue a delivery again now, with a fresh retry window; it keeps its webhook-id."""
    await load_endpoint(webhooks, account_id=account_id, endpoint_id=endpoint_id)
    now_us = to_micros(webhooks.clock.now())
    d = webhook_deliveries
    async with write_transaction(webhooks.store.engine) as conn:
        status = await conn.scalar(
            select(d.c.status).where(d.c.delivery_id == delivery_id, d.c.endpoint_id == endpoint_id)
        )
        if status is None:
            raise NotFound(f"delivery {delivery_id} not found", field="delivery_id")
        if status == "cancelled":
            raise Conflict(f"delivery {delivery_id} was cancelled with its endpoint")
        await conn.execute(
            update(d)
            .where(
                and_(
                    d.c.delivery_id == delivery_id,
                    d.c.lease_until_us.is_(None) | (d.c.lease_until_us <= now_us),
                )
            )
            .values(
                status="pending",
                next_attempt_at_us=now_us,
                expires_at_us=now_us + int(webhooks.give_up_after_seconds * 1_000_000),
                finished_at_us=None,
            )
        )


async def send_test_event(webhooks: Webhooks, *, account_id: str | None, endpoint_id: str) -> str:
    """Queue a ``webhook.test`` delivery behind the endpoint's pending ones; returns its webhook-id."""
    state = await load_endpoint(webhooks, account_id=account_id, endpoint_id=endpoint_id)
    now = webhooks.clock.now()
    now_us = to_micros(now)
    message_id = new_id("test")
    delivery_id = delivery_id_for(endpoint_id, message_id)
    payload = envelope(
        TEST_EVENT_TYPE,
        now,
        {"object": "webhook_test", "endpoint_id": endpoint_id, "account_id": state.account_id},
    )
    async with write_transaction(webhooks.store.engine) as conn:
        await conn.execute(
            insert(webhook_deliveries).values(
                delivery_id=delivery_id,
                endpoint_id=endpoint_id,
                account_id=state.account_id,
                message_id=message_id,
                event_type=TEST_EVENT_TYPE,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at_us=now_us,
                expires_at_us=now_us + int(webhooks.give_up_after_seconds * 1_000_000),
                created_at_us=now_us,
            )
        )
    return delivery_id


async def endpoint_views(
    webhooks: Webhooks, states: list[EndpointState], failing_after: int
) -> list[EndpointOut]:
    async with read_transaction(webhooks.store.engine) as conn:
        failures = await failures_of(conn, [s.endpoint_id for s in states])
    return [endpoint_out(s, failures.get(s.endpoint_id, 0), failing_after) for s in states]
