"""API keys: create, revoke and rotate as pure decisions over the key's folded stream."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from reservekit.clock import in_utc
from reservekit.domain.accounts import AccountState, validate_name
from reservekit.domain.domains import normalise_domains
from reservekit.domain.errors import Conflict, InvalidInput
from reservekit.domain.events import (
    Event,
    KeyCreated,
    KeyRevoked,
    KeyRotated,
    KeyUpdated,
    LeakReported,
    RecordedEvent,
)
from reservekit.domain.scopes import check_grantable, resolve_scopes

MAX_GRACE_SECONDS = 604_800
MAX_LEAK_SOURCE_CHARS = 2000
"""How much of a leak report's ``source`` (where the key was found) an event keeps."""
KeyStatus = Literal["active", "revoked", "expired"]


class KeyState(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    account_id: str
    key_hash: str
    prefix: str
    last4: str
    name: str | None
    domains: tuple[str, ...]
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None = None
    revoke_reason: str | None = None
    rotated_from: str | None = None
    rotated_to: str | None = None
    version: int = 1
    position: int = 0

    def status(self, now: datetime) -> KeyStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


def evolve_key(state: KeyState | None, recorded: RecordedEvent) -> KeyState | None:
    event = recorded.data
    if isinstance(event, KeyCreated):
        return KeyState(
            key_id=event.key_id,
            account_id=event.account_id,
            key_hash=event.key_hash,
            prefix=event.prefix,
            last4=event.last4,
            name=event.name,
            domains=event.domains,
            scopes=event.scopes,
            created_at=recorded.recorded_at,
            expires_at=event.expires_at,
            rotated_from=event.rotated_from,
            version=recorded.stream_version,
            position=recorded.position,
        )
    if state is None:
        return None
    moved = {"version": recorded.stream_version, "position": recorded.position}
    if isinstance(event, KeyRevoked | LeakReported):
        if state.revoked_at is not None:
            return msgspec.structs.replace(state, **moved)
        reason = event.reason if isinstance(event, KeyRevoked) else "leak reported"
        return msgspec.structs.replace(state, revoked_at=recorded.recorded_at, revoke_reason=reason, **moved)
    if isinstance(event, KeyRotated):
        expires = (
            event.grace_ends_at if state.expires_at is None else min(state.expires_at, event.grace_ends_at)
        )
        return msgspec.structs.replace(state, rotated_to=event.new_key_id, expires_at=expires, **moved)
    if isinstance(event, KeyUpdated):
        return msgspec.structs.replace(
            state,
            name=event.name,
            domains=event.domains,
            scopes=event.scopes,
            expires_at=event.expires_at,
            **moved,
        )
    return state


def fold_key(history: Iterable[RecordedEvent]) -> KeyState | None:
    state: KeyState | None = None
    for recorded in history:
        state = evolve_key(state, recorded)
    return state


class KeyMaterial(msgspec.Struct, frozen=True):
    """What the adapter generated for a new key: the domain never sees the plaintext."""

    key_id: str
    key_hash: str
    prefix: str
    last4: str


def decide_create_key(
    account: AccountState,
    material: KeyMaterial,
    *,
    name: str | None,
    domains: Iterable[str] | None,
    scopes: Iterable[str] | None,
    expires_at: datetime | None,
    now: datetime,
    grantable: frozenset[str] | None = None,
) -> list[Event]:
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput("expires_at must include a timezone offset", field="expires_at")
        try:
            in_utc(expires_at)
        except ValueError as exc:
            raise InvalidInput(f"expires_at {exc}", field="expires_at") from None
        if expires_at <= now:
            raise InvalidInput("expires_at must be in the future", field="expires_at")
    resolved = resolve_scopes(scopes, operator=account.operator)
    if scopes is None and grantable is not None:
        resolved = tuple(s for s in resolved if s in grantable)
    check_grantable(resolved, grantable)
    return [
        KeyCreated(
            key_id=material.key_id,
            account_id=account.account_id,
            key_hash=material.key_hash,
            prefix=material.prefix,
            last4=material.last4,
            name=validate_name(name, required=False),
            domains=normalise_domains(domains),
            scopes=resolved,
            expires_at=expires_at,
        )
    ]


def decide_revoke(state: KeyState, reason: str | None) -> list[Event]:
    """Revoking a revoked key decides nothing: the API answers 200 and writes no event."""
    if state.revoked_at is not None:
        return []
    return [
        KeyRevoked(
            key_id=state.key_id,
            account_id=state.account_id,
            reason=validate_name(reason, field="reason", required=False),
        )
    ]


def decide_rotate(
    state: KeyState, material: KeyMaterial, *, grace_period_seconds: int, now: datetime
) -> tuple[list[Event], list[Event]]:
    """Events for (old key's stream, new key's stream); appended together or not at all."""
    if not 0 <= grace_period_seconds <= MAX_GRACE_SECONDS:
        raise InvalidInput(
            f"grace_period_seconds must be between 0 and {MAX_GRACE_SECONDS}", field="grace_period_seconds"
        )
    status = state.status(now)
    if status != "active":
        raise Conflict(f"key {state.key_id} is {status} and cannot be rotated")
    if state.rotated_to is not None:
        raise Conflict(f"key {state.key_id} was already rotated to {state.rotated_to}")
    grace_end = now + timedelta(seconds=grace_period_seconds)
    rotated = KeyRotated(
        key_id=state.key_id, account_id=state.account_id, new_key_id=material.key_id, grace_ends_at=grace_end
    )
    created = KeyCreated(
        key_id=material.key_id,
        account_id=state.account_id,
        key_hash=material.key_hash,
        prefix=material.prefix,
        last4=material.last4,
        name=state.name,
        domains=state.domains,
        scopes=state.scopes,
        expires_at=state.expires_at,
        rotated_from=state.key_id,
    )
    return [rotated], [created]


def decide_update(
    state: KeyState,
    account: AccountState,
    *,
    name: str | None,
    domains: Iterable[str] | None,
    scopes: Iterable[str] | None,
    expires_at: datetime | None,
    now: datetime,
    grantable: frozenset[str] | None = None,
) -> list[Event]:
    """Replace a live key's name, domains, scopes and expiry (validated exactly as at creation).

    A key that is revoked, expired or rotated out keeps its settings: editing it would change nothing
    it can do. An edit that changes nothing writes nothing.
    """
    status = state.status(now)
    if status != "active" or state.rotated_to is not None:
        raise Conflict(
            f"key {state.key_id} is {'rotating' if status == 'active' else status}; it cannot be edited"
        )
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput("expires_at must include a timezone offset", field="expires_at")
        if expires_at <= now:
            raise InvalidInput("expires_at must be in the future", field="expires_at")
    resolved = resolve_scopes(scopes, operator=account.operator)
    check_grantable(resolved, grantable)
    updated = KeyUpdated(
        key_id=state.key_id,
        account_id=state.account_id,
        name=validate_name(name, required=False),
        domains=normalise_domains(domains),
        scopes=resolved,
        expires_at=expires_at,
    )
    unchanged = (updated.name, updated.domains, updated.scopes, updated.expires_at) == (
        state.name,
        state.domains,
        state.scopes,
        state.expires_at,
    )
    return [] if unchanged else [updated]
