"""Creating, revoking and rotating keys. A lost race is a 409, never a half-applied change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from reservekit.domain.errors import Conflict, NotFound
from reservekit.domain.keys import KeyState, decide_create_key, decide_revoke, decide_rotate, fold_key
from reservekit.events.store import ConcurrencyConflict, StreamWrite
from reservekit.events.types import Metadata, RecordedEvent
from reservekit.usecases.accounts import load_account
from reservekit.usecases.context import Authority, IssuedKey


async def load_key(authority: Authority, *, account_id: str | None, key_id: str) -> KeyState:
    """Another account's key is reported exactly like a missing one (404, never 403)."""
    state = fold_key(await authority.store.read_stream(key_id)) if key_id.startswith("key_") else None
    if state is None or (account_id is not None and state.account_id != account_id):
        raise NotFound(f"API key {key_id} not found", field="id")
    return state


async def create_key(
    authority: Authority,
    *,
    account_id: str,
    name: str | None = None,
    domains: Sequence[str] | None = None,
    scopes: Sequence[str] | None = None,
    expires_at: datetime | None = None,
    grantable: frozenset[str] | None = None,
    metadata: Metadata,
) -> IssuedKey:
    account = await load_account(authority, account_id)
    secret, material = authority.new_key_material()
    events = decide_create_key(
        account,
        material,
        name=name,
        domains=domains,
        scopes=scopes,
        expires_at=expires_at,
        now=authority.clock.now(),
        grantable=grantable,
    )
    recorded = await authority.store.append([StreamWrite(material.key_id, 0, events)], metadata)
    return IssuedKey(_folded(recorded), secret)


async def revoke_key(
    authority: Authority, *, account_id: str | None, key_id: str, reason: str | None, metadata: Metadata
) -> KeyState:
    state = await load_key(authority, account_id=account_id, key_id=key_id)
    events = decide_revoke(state, reason)
    if not events:
        return state
    try:
        recorded = await authority.store.append([StreamWrite(key_id, state.version, events)], metadata)
    except ConcurrencyConflict:
        raise Conflict(f"API key {key_id} was changed by a concurrent request; nothing was written") from None
    return fold_key(await authority.store.read_stream(key_id)) or _folded(recorded)


async def rotate_key(
    authority: Authority,
    *,
    account_id: str | None,
    key_id: str,
    grace_period_seconds: int,
    metadata: Metadata,
) -> tuple[KeyState, IssuedKey]:
    state = await load_key(authority, account_id=account_id, key_id=key_id)
    secret, material = authority.new_key_material()
    old_events, new_events = decide_rotate(
        state, material, grace_period_seconds=grace_period_seconds, now=authority.clock.now()
    )
    try:
        recorded = await authority.store.append(
            [StreamWrite(key_id, state.version, old_events), StreamWrite(material.key_id, 0, new_events)],
            metadata,
        )
    except ConcurrencyConflict:
        raise Conflict(f"API key {key_id} was changed by a concurrent request; nothing was written") from None
    old = fold_key([*await authority.store.read_stream(key_id)])
    assert old is not None
    return old, IssuedKey(_folded([e for e in recorded if e.stream_id == material.key_id]), secret)


def _folded(recorded: Sequence[RecordedEvent]) -> KeyState:
    state = fold_key(recorded)
    assert state is not None
    return state
