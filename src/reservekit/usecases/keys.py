"""Create, revoke and rotate keys. A lost race is a ``ConcurrentChange``, never a half-applied change."""

from __future__ import annotations

from reservekit.domain.errors import ConcurrentChange, NotFound
from reservekit.domain.events import Metadata
from reservekit.domain.keys import (
    KeyState,
    decide_create_key,
    decide_revoke,
    decide_rotate,
    decide_update,
    fold_key,
)
from reservekit.usecases.accounts import load_account
from reservekit.usecases.commands import CreateKey, IssuedKey, RevokeKey, RotatedKey, RotateKey, UpdateKey
from reservekit.usecases.dependencies import Handled, HandlerDependencies
from reservekit.usecases.ports import ConcurrencyConflict, EventStore, StreamWrite


async def load_key(store: EventStore, *, account_id: str | None, key_id: str) -> KeyState:
    """Another account's key is reported exactly like a missing one (never "not yours")."""
    state = fold_key(await store.read_stream(key_id)) if key_id.startswith("key_") else None
    if state is None or (account_id is not None and state.account_id != account_id):
        raise NotFound(f"API key {key_id} not found", field="id")
    return state


def _changed_concurrently(key_id: str) -> ConcurrentChange:
    return ConcurrentChange(f"API key {key_id} was changed by a concurrent request; nothing was written")


async def handle_create_key(
    command: CreateKey, deps: HandlerDependencies, metadata: Metadata
) -> Handled[IssuedKey]:
    account = await load_account(deps.store, command.account_id)
    secret, material = deps.new_key_material()
    events = decide_create_key(
        account,
        material,
        name=command.name,
        domains=command.domains,
        scopes=command.scopes,
        expires_at=command.expires_at,
        now=deps.clock.now(),
        grantable=command.grantable,
    )
    recorded = await deps.store.append([StreamWrite(material.key_id, 0, events)], metadata)
    key = fold_key(recorded)
    assert key is not None  # the stream starts with the KeyCreated just decided
    return Handled(IssuedKey(key, secret), recorded[-1].position)


async def handle_revoke_key(
    command: RevokeKey, deps: HandlerDependencies, metadata: Metadata
) -> Handled[KeyState]:
    """Revoking a revoked key writes nothing and answers with the key as it is."""
    state = await load_key(deps.store, account_id=command.account_id, key_id=command.key_id)
    events = decide_revoke(state, command.reason)
    if not events:
        return Handled(state)
    try:
        recorded = await deps.store.append([StreamWrite(command.key_id, state.version, events)], metadata)
    except ConcurrencyConflict:
        raise _changed_concurrently(command.key_id) from None
    revoked = fold_key(await deps.store.read_stream(command.key_id))
    assert revoked is not None  # the stream held the key a moment ago and streams only grow
    return Handled(revoked, recorded[-1].position)


async def handle_rotate_key(
    command: RotateKey, deps: HandlerDependencies, metadata: Metadata
) -> Handled[RotatedKey]:
    """The old key's ``KeyRotated`` and the new key's ``KeyCreated`` are one append."""
    state = await load_key(deps.store, account_id=command.account_id, key_id=command.key_id)
    secret, material = deps.new_key_material()
    old_events, new_events = decide_rotate(
        state, material, grace_period_seconds=command.grace_period_seconds, now=deps.clock.now()
    )
    try:
        recorded = await deps.store.append(
            [
                StreamWrite(command.key_id, state.version, old_events),
                StreamWrite(material.key_id, 0, new_events),
            ],
            metadata,
        )
    except ConcurrencyConflict:
        raise _changed_concurrently(command.key_id) from None
    old = fold_key(await deps.store.read_stream(command.key_id))
    new = fold_key(e for e in recorded if e.stream_id == material.key_id)
    assert old is not None
    assert new is not None
    return Handled(RotatedKey(old, IssuedKey(new, secret)), recorded[-1].position)


async def handle_update_key(
    command: UpdateKey, deps: HandlerDependencies, metadata: Metadata
) -> Handled[KeyState]:
    """An edit that changes nothing writes nothing and answers with the key as it is."""
    state = await load_key(deps.store, account_id=command.account_id, key_id=command.key_id)
    account = await load_account(deps.store, state.account_id)
    events = decide_update(
        state,
        account,
        name=command.name,
        domains=command.domains,
        scopes=command.scopes,
        expires_at=command.expires_at,
        now=deps.clock.now(),
        grantable=command.grantable,
    )
    if not events:
        return Handled(state)
    try:
        recorded = await deps.store.append([StreamWrite(command.key_id, state.version, events)], metadata)
    except ConcurrencyConflict:
        raise _changed_concurrently(command.key_id) from None
    updated = fold_key(await deps.store.read_stream(command.key_id))
    assert updated is not None
    return Handled(updated, recorded[-1].position)
