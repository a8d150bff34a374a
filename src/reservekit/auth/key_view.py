"""Each replica's in-memory view of keys, kept current by tailing the lifecycle log.

A known key is answered from memory. A miss maps the hash to a key id through the ``api_keys``
projection and folds that key's own stream from the log, so a key created on another replica is found
on first use, and the answer never depends on how far the projection has caught up. Events are applied
by position, idempotently, so the tailer and the miss path can overlap without double-applying.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence

import structlog
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from projections import api_keys
from reservekit.db import DatabaseUnavailable, read_transaction
from reservekit.domain.accounts import fold_account
from reservekit.domain.keys import KeyState, fold_key
from reservekit.events.store import head_position_in, read_after_in, read_stream_in
from reservekit.events.tables import projection_checkpoints
from reservekit.events.types import (
    AccountOpened,
    AccountPlanChanged,
    KeyCreated,
    KeyRevoked,
    KeyRotated,
    LeakReported,
    RecordedEvent,
)
from reservekit.projecting.wakeup import WakeUp, stop_loop, wait_for_wakeup

log = structlog.get_logger(__name__)


class CachedKey:
    """What the middleware needs per request, in the cheapest shape to check."""

    __slots__ = (
        "account_id",
        "domains",
        "expires_at",
        "key_id",
        "operator",
        "position",
        "revoked",
        "rotated",
        "scopes",
    )

    def __init__(self, state: KeyState) -> None:
        self.key_id = state.key_id
        self.account_id = state.account_id
        self.scopes = frozenset(state.scopes)
        self.domains = state.domains
        self.expires_at = state.expires_at.timestamp() if state.expires_at else None
        self.revoked = state.revoked_at is not None
        self.position = state.position
        self.operator = "platform:admin" in self.scopes
        self.rotated = state.rotated_to is not None


class KeyView:
    def __init__(self, engine: AsyncEngine, *, capacity: int = 100_000) -> None:
        self._engine = engine
        self._capacity = capacity
        self._by_hash: OrderedDict[str, CachedKey] = OrderedDict()
        self._hash_by_id: dict[str, str] = {}
        # Plans are few and small: every account ever seen stays in memory.
        self._plans: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self.position = 0
        self._started_at = 0

    async def start(self) -> None:
        """Begin at the log head: older keys are loaded lazily on first use."""
        async with read_transaction(self._engine) as conn:
            self.position = self._started_at = await head_position_in(conn)

    def get(self, key_hash: str) -> CachedKey | None:
        """The hot path: a dictionary lookup, no I/O."""
        entry = self._by_hash.get(key_hash)
        if entry is not None:
            self._by_hash.move_to_end(key_hash)
        return entry

    def plan_of(self, account_id: str) -> str | None:
        return self._plans.get(account_id)

    async def resolve_plan(self, account_id: str) -> str | None:
        async with read_transaction(self._engine) as conn:
            account = fold_account(await read_stream_in(conn, account_id))
        if account is None:
            return None
        self._plans.setdefault(account_id, account.plan)
        return self._plans[account_id]

    def __len__(self) -> int:
        return len(self._by_hash)

    async def resolve(self, key_hash: str) -> CachedKey | None:
        """A miss: catch up with the log, then look the key up in the database."""
        async with self._lock:
            await self._catch_up_locked()
            entry = self._by_hash.get(key_hash)
            if entry is not None:
                return entry
            async with read_transaction(self._engine) as conn:
                key_id = await self._key_id_for(conn, key_hash)
                state = fold_key(await read_stream_in(conn, key_id)) if key_id else None
                if state is not None and state.account_id not in self._plans:
                    account = fold_account(await read_stream_in(conn, state.account_id))
                    if account is not None:
                        self._plans[account.account_id] = account.plan
            if state is None:
                return None
            return self._remember(key_hash, CachedKey(state))

    async def _key_id_for(self, conn: AsyncConnection, key_hash: str) -> str | None:
        keys = api_keys.PROJECTION.live.keys
        key_id = await conn.scalar(select(keys.c.key_id).where(keys.c.key_hash == key_hash))
        if key_id is not None:
            return str(key_id)
        checkpoint = await conn.scalar(
            select(projection_checkpoints.c.position).where(
                projection_checkpoints.c.name == api_keys.PROJECTION.name
            )
        )
        # Creations between the projection's checkpoint and this view's start are in neither place yet.
        after = int(checkpoint or 0)
        while after < self._started_at:
            batch = await read_after_in(conn, after, limit=1000, until=self._started_at)
            if not batch:
                break
            for recorded in batch:
                if isinstance(recorded.data, KeyCreated) and recorded.data.key_hash == key_hash:
                    return recorded.data.key_id
            after = batch[-1].position
        return None

    def _remember(self, key_hash: str, entry: CachedKey) -> CachedKey:
        self._by_hash[key_hash] = entry
        self._hash_by_id[entry.key_id] = key_hash
        while len(self._by_hash) > self._capacity:
            _, evicted = self._by_hash.popitem(last=False)
            self._hash_by_id.pop(evicted.key_id, None)
        return entry

    def apply(self, batch: Sequence[RecordedEvent]) -> None:
        """Apply committed events; safe to call twice with the same events."""
        for recorded in batch:
            event = recorded.data
            if isinstance(event, AccountOpened | AccountPlanChanged):
                self._plans[event.account_id] = event.plan
            elif isinstance(event, KeyCreated):
                if event.key_hash not in self._by_hash:
                    state = fold_key([recorded])
                    assert state is not None
                    self._remember(event.key_hash, CachedKey(state))
            elif isinstance(event, KeyRevoked | LeakReported | KeyRotated):
                key_hash = self._hash_by_id.get(event.key_id)
                entry = self._by_hash.get(key_hash) if key_hash else None
                if entry is not None and recorded.position > entry.position:
                    if isinstance(event, KeyRotated):
                        entry.rotated = True
                        grace_end = event.grace_ends_at.timestamp()
                        entry.expires_at = (
                            grace_end if entry.expires_at is None else min(entry.expires_at, grace_end)
                        )
                    else:
                        entry.revoked = True
                    entry.position = recorded.position
            self.position = max(self.position, recorded.position)

    async def catch_up(self) -> None:
        async with self._lock:
            await self._catch_up_locked()

    async def _catch_up_locked(self) -> None:
        while True:
            async with read_transaction(self._engine) as conn:
                batch = await read_after_in(conn, self.position, limit=1000)
            if not batch:
                return
            self.apply(batch)


class KeyViewTailer:
    """Background task: applies new lifecycle events to the view on every wake-up or poll."""

    def __init__(self, view: KeyView, wakeup: WakeUp, *, poll_interval: float) -> None:
        self._view = view
        self._wakeup = wakeup
        self._poll_interval = poll_interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reservekit-key-view")

    async def stop(self) -> None:
        await stop_loop(self._task, self._stopping, self._wakeup.notify)
        self._task = None

    async def _run(self) -> None:
        waiter = self._wakeup.subscribe()
        try:
            while not self._stopping.is_set():
                try:
                    await self._view.catch_up()
                except (DatabaseUnavailable, SQLAlchemyError, OSError) as exc:
                    log.warning("key_view_catch_up_failed", error=str(exc))
                await wait_for_wakeup(waiter, self._poll_interval)
        finally:
            self._wakeup.unsubscribe(waiter)
