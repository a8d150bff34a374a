"""Leak reports: anyone may hand in a leaked ``sk_rsv_`` key; a known one is revoked and flagged.

The caller learns nothing: every report gets the same answer whether the key is malformed, unknown,
active or already revoked (the web layer returns the same 202 for all). A key's leak is recorded
once: ``LeakReported`` both revokes the key (see ``domain.keys.evolve_key``) and is what the
``leak_flags`` projection turns into a critical flag; a second report of the same key writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from projections import api_keys
from reservekit.db import read_transaction
from reservekit.domain.keys import fold_key
from reservekit.events.store import ConcurrencyConflict, StreamWrite
from reservekit.events.types import LeakReported, Metadata
from reservekit.keys.tokens import is_well_formed
from reservekit.usecases.context import Authority

KeyIdLookup = Callable[[str], Awaitable[str | None]]
MAX_SOURCE_CHARS = 2000
_ATTEMPTS = 3


def projection_lookup(engine: AsyncEngine) -> KeyIdLookup:
    """Key id by key hash from the ``api_keys`` projection."""

    async def lookup(key_hash: str) -> str | None:
        keys = api_keys.PROJECTION.live.keys
        async with read_transaction(engine) as conn:
            key_id = await conn.scalar(select(keys.c.key_id).where(keys.c.key_hash == key_hash))
        return str(key_id) if key_id is not None else None

    return lookup


async def report_leak(
    authority: Authority,
    *,
    secret: str,
    source: str | None,
    metadata: Metadata,
    lookup: KeyIdLookup | None = None,
) -> bool:
    """Record a leak of ``secret`` if it is a known key not yet reported; True if an event was written.

    The return value is for callers that refresh read models; it must never reach the reporter.
    """
    if not is_well_formed(secret):
        return False
    find = lookup or projection_lookup(authority.store.engine)
    key_id = await find(authority.hasher.digest(secret))
    if key_id is None:
        return False
    for _ in range(_ATTEMPTS):
        history = await authority.store.read_stream(key_id)
        state = fold_key(history)
        if state is None or any(isinstance(e.data, LeakReported) for e in history):
            return False
        event = LeakReported(
            key_id=key_id, account_id=state.account_id, source=(source or "")[:MAX_SOURCE_CHARS] or None
        )
        try:
            version = history[-1].stream_version
            await authority.store.append([StreamWrite(key_id, version, [event])], metadata)
        except ConcurrencyConflict:
            continue  # a concurrent revoke, rotation or report: re-read and decide again
        return True
    return False
