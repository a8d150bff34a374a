"""Webhook endpoints: create (secret once), update, roll the secret, delete, disable after failures.

Each change is an event on the endpoint's stream; the signing secret goes to ``webhook_secrets``,
encrypted, in the same transaction as the event that introduces its version (``EventStore.append``'s
``along``), so a secret is stored exactly when its endpoint or roll is recorded. The HTTP controllers
and the CLI call these functions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from reservekit.clock import Clock, SystemClock, to_micros
from reservekit.domain.errors import ConcurrentChange, NotFound
from reservekit.domain.events import Event, Metadata
from reservekit.domain.webhooks import (
    EndpointState,
    decide_create_endpoint,
    decide_delete_endpoint,
    decide_disable_for_failures,
    decide_roll_secret,
    decide_update_endpoint,
    fold_endpoint,
)
from reservekit.events.store import SqlEventStore
from reservekit.ids import new_id
from reservekit.usecases.accounts import load_account
from reservekit.usecases.application import NoReadModels
from reservekit.usecases.ports import ConcurrencyConflict, ReadModels, StreamWrite
from reservekit.webhooks.secrets import SecretBox, generate_signing_secret, store_secret
from reservekit.webhooks.ssrf import Resolver, check_url_at_save, system_resolver
from reservekit.webhooks.tables import webhook_endpoint_health

ENDPOINT_PREFIX = "whe"
_DISPATCHER = Metadata(source="webhooks")
Along = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(frozen=True)
class Webhooks:
    """What the webhook operations need: the log, the secret box, the URL policy, and read-your-writes.

    These operations live beside the dispatcher rather than in ``usecases/``: besides the log they
    write the encrypted secret and read the dispatcher's tables, which handlers may not reach.
    """

    store: SqlEventStore
    box: SecretBox
    allow_loopback: bool = False
    resolver: Resolver = field(default=system_resolver)
    give_up_after_seconds: float = 3 * 86_400.0
    # Delivery times (retry windows, test events) follow the dispatcher's wall clock, not the API's.
    clock: Clock = field(default_factory=SystemClock)
    # After a write, wait until the outbox projection shows it (listings right after a create).
    read_models: ReadModels = field(default_factory=NoReadModels)
    failing_after_errors: int = 5
    nudge: Callable[[], None] = field(default=lambda: None)


class EndpointWithSecret(msgspec.Struct, frozen=True):
    endpoint: EndpointState
    secret: str


async def load_endpoint(webhooks: Webhooks, *, account_id: str | None, endpoint_id: str) -> EndpointState:
    """Another account's endpoint, or a deleted one, is reported exactly like a missing one."""
    state = None
    if endpoint_id.startswith(ENDPOINT_PREFIX + "_"):
        state = fold_endpoint(await webhooks.store.read_stream(endpoint_id))
    if state is None or state.deleted or (account_id is not None and state.account_id != account_id):
        raise NotFound(f"webhook endpoint {endpoint_id} not found", field="id")
    return state


def _sealer(
    webhooks: Webhooks, state_id: str, account_id: str, version: int, secret: str, at: datetime
) -> Along:
    async def seal(conn: AsyncConnection) -> None:
        await store_secret(
            conn,
            webhooks.box,
            endpoint_id=state_id,
            account_id=account_id,
            version=version,
            secret=secret,
            created_at_us=to_micros(at),
        )

    return seal


async def create_endpoint(
    webhooks: Webhooks,
    *,
    account_id: str,
    url: str,
    event_types: Sequence[str],
    min_flag_severity: str = "low",
    enabled: bool = True,
    description: str | None = None,
    metadata: Metadata,
) -> EndpointWithSecret:
    await load_account(webhooks.store, account_id)
    endpoint_id = new_id(ENDPOINT_PREFIX)
    events = decide_create_endpoint(
        endpoint_id=endpoint_id,
        account_id=account_id,
        url=url,
        event_types=event_types,
        min_flag_severity=min_flag_severity,
        enabled=enabled,
        description=description,
        allow_loopback=webhooks.allow_loopback,
    )
    await check_url_at_save(url.strip(), allow_loopback=webhooks.allow_loopback, resolver=webhooks.resolver)
    secret = generate_signing_secret()
    seal = _sealer(webhooks, endpoint_id, account_id, 1, secret, webhooks.clock.now())
    recorded = await webhooks.store.append([StreamWrite(endpoint_id, 0, events)], metadata, along=seal)
    await webhooks.read_models.wait_until(recorded[-1].position)
    state = fold_endpoint(recorded)
    assert state is not None
    return EndpointWithSecret(state, secret)


async def update_endpoint(
    webhooks: Webhooks,
    *,
    account_id: str | None,
    endpoint_id: str,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    min_flag_severity: str | None = None,
    enabled: bool | None = None,
    description: str | None = None,
    metadata: Metadata,
) -> EndpointState:
    state = await load_endpoint(webhooks, account_id=account_id, endpoint_id=endpoint_id)
    events = decide_update_endpoint(
        state,
        url=url,
        event_types=event_types,
        min_flag_severity=min_flag_severity,
        enabled=enabled,
        description=description,
        allow_loopback=webhooks.allow_loopback,
    )
    if url is not None:
        await check_url_at_save(
            url.strip(), allow_loopback=webhooks.allow_loopback, resolver=webhooks.resolver
        )
    if not events:
        return state
    # Turning an endpoint back on starts its failure count afresh (else the next error disables it).
    along = _forget_failures(endpoint_id) if enabled and not state.enabled else None
    await _append(webhooks, state, events, metadata, along=along)
    return await load_endpoint(webhooks, account_id=account_id, endpoint_id=endpoint_id)


def _forget_failures(endpoint_id: str) -> Along:
    async def forget(conn: AsyncConnection) -> None:
        await conn.execute(
            delete(webhook_endpoint_health).where(webhook_endpoint_health.c.endpoint_id == endpoint_id)
        )

    return forget


async def roll_secret(
    webhooks: Webhooks, *, account_id: str | None, endpoint_id: str, metadata: Metadata
) -> EndpointWithSecret:
    """A new secret signs every delivery from now on; the old one stops at once (shown this once)."""
    state = await load_endpoint(webhooks, account_id=account_id, endpoint_id=endpoint_id)
    events = decide_roll_secret(state)
    secret = generate_signing_secret()
    version = state.secret_version + 1
    seal = _sealer(webhooks, endpoint_id, state.account_id, version, secret, webhooks.clock.now())
    await _append(webhooks, state, events, metadata, along=seal)
    rolled = await load_endpoint(webhooks, account_id=account_id, endpoint_id=endpoint_id)
    return EndpointWithSecret(rolled, secret)


async def delete_endpoint(
    webhooks: Webhooks, *, account_id: str | None, endpoint_id: str, metadata: Metadata
) -> EndpointState:
    state = await load_endpoint(webhooks, account_id=account_id, endpoint_id=endpoint_id)
    await _append(webhooks, state, decide_delete_endpoint(state), metadata)
    return state


async def disable_for_failures(
    webhooks: Webhooks, *, endpoint_id: str, failing_since: datetime, reason: str
) -> bool:
    """The dispatcher's decision after a day of failures; True if this call disabled the endpoint."""
    state = fold_endpoint(await webhooks.store.read_stream(endpoint_id))
    if state is None:
        return False
    events = decide_disable_for_failures(state, failing_since=failing_since, reason=reason)
    if not events:
        return False
    try:
        await webhooks.store.append([StreamWrite(endpoint_id, state.version, events)], _DISPATCHER)
    except ConcurrencyConflict:
        return False  # someone changed the endpoint meanwhile; the next failure decides again
    return True


async def _append(
    webhooks: Webhooks,
    state: EndpointState,
    events: list[Event],
    metadata: Metadata,
    along: Along | None = None,
) -> None:
    if not events:
        return
    try:
        recorded = await webhooks.store.append(
            [StreamWrite(state.endpoint_id, state.version, events)], metadata, along=along
        )
    except ConcurrencyConflict:
        raise ConcurrentChange(
            f"webhook endpoint {state.endpoint_id} was changed by a concurrent request; nothing was written"
        ) from None
    await webhooks.read_models.wait_until(recorded[-1].position)
