"""Each replica's in-memory view of keys, kept current by tailing the lifecycle log.

A known key is answered from memory. A miss maps the hash to a key id through the ``api_keys``
projection and folds that key's own stream from the log, so a key created on another replica is found
on first use, and the answer never depends on how far the projection has caught up.

The view's cursor (``position``, ``head_hash``) only ever advances over a gapless prefix of the log:
each event it moves over must carry ``prev_hash == head_hash``, the hash chain doing the bookkeeping.
This replica's own appends are applied to cached entries at once (a revocation holds for the very next
request) but move the cursor only when they follow on directly; otherwise the tailer reads the gap.
Events are applied per key by position, idempotently, so the tailer, the miss path and the writer's own
appends may overlap in any order without losing or double-applying anything.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from projections import api_keys
from reservekit.db import read_transaction
from reservekit.domain.accounts import fold_account
from reservekit.domain.events import (
    AccountOpened,
    AccountPlanChanged,
    KeyCreated,
    KeyRevoked,
    KeyRotated,
    KeyUpdated,
    LeakReported,
    RecordedEvent,
)
from reservekit.domain.keys import KeyState, fold_key
from reservekit.events.chain import GENESIS_HASH
from reservekit.events.store import read_after_in, read_stream_in
from reservekit.events.tables import events, projection_checkpoints

log = structlog.get_logger(__name__)

# Own appends remembered for a miss that was reading the database while they were applied.
_RECENT_OWN_EVENTS = 4096


# Keys share a handful of scope sets and domain lists: one frozenset (or tuple) per distinct value,
# shared by every key that has it, instead of one per key (issue 14: ~40 % of a key's memory).
# Bounded by the number of distinct combinations in use, which is small.
_SCOPE_SETS: dict[frozenset[str], frozenset[str]] = {}
_DOMAIN_LISTS: dict[tuple[str, ...], tuple[str, ...]] = {}


def shared_scopes(scopes: Iterable[str]) -> frozenset[str]:
    value = frozenset(scopes)
    return _SCOPE_SETS.setdefault(value, frozenset(sys.intern(scope) for scope in value))


def shared_domains(domains: Sequence[str]) -> tuple[str, ...]:
    value = tuple(domains)
    if not value:
        return ()
    return _DOMAIN_LISTS.setdefault(value, tuple(sys.intern(domain) for domain in value))


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
        self.account_id = sys.intern(state.account_id)  # shared by the account's keys and its plan
        self.scopes = shared_scopes(state.scopes)
        self.domains = shared_domains(state.domains)
        self.expires_at = state.expires_at.timestamp() if state.expires_at else None
        self.revoked = state.revoked_at is not None
        self.position = state.position
        self.operator = "platform:admin" in self.scopes
        self.rotated = state.rotated_to is not None

    def same_as(self, other: CachedKey) -> bool:
        return all(getattr(self, name) == getattr(other, name) for name in CachedKey.__slots__)


class LogMismatch(Exception):
    """The log does not continue the prefix this view applied: an event was skipped, or the log changed."""


class KeyView:
    def __init__(self, engine: AsyncEngine, *, capacity: int = 100_000) -> None:
        self._engine = engine
        self._capacity = capacity
        self._by_hash: OrderedDict[str, CachedKey] = OrderedDict()
        self._hash_by_id: dict[str, str] = {}
        # Plans are few and small: every account ever seen stays in memory, with the position that set it.
        self._plans: dict[str, tuple[int, str]] = {}
        self._lock = asyncio.Lock()
        self._own_seq = itertools.count(1)
        self._own_recent: deque[tuple[int, RecordedEvent]] = deque(maxlen=_RECENT_OWN_EVENTS)
        self._own_last = 0
        self.position = 0
        self.head_hash = GENESIS_HASH
        # The last cursor the self-check found equal to the log: where a heal re-reads from.
        self.verified_position = 0
        self.verified_hash = GENESIS_HASH
        self.mismatches = 0
        self.heals = 0
        self._started_at = 0

    async def start(self) -> None:
        """Begin at the log head: older keys are loaded lazily on first use."""
        async with read_transaction(self._engine) as conn:
            head = (
                await conn.execute(
                    select(events.c.position, events.c.hash).order_by(events.c.position.desc()).limit(1)
                )
            ).first()
        if head is not None:
            self.position, self.head_hash = int(head.position), str(head.hash)
        self._started_at = self.position
        self.verified_position, self.verified_hash = self.position, self.head_hash

    def get(self, key_hash: str) -> CachedKey | None:
        """The hot path: a dictionary lookup, no I/O."""
        entry = self._by_hash.get(key_hash)
        if entry is not None:
            self._by_hash.move_to_end(key_hash)
        return entry

    def plan_of(self, account_id: str) -> str | None:
        known = self._plans.get(account_id)
        return known[1] if known else None

    async def resolve_plan(self, account_id: str) -> str | None:
        async with read_transaction(self._engine) as conn:
            history = await read_stream_in(conn, account_id)
        account = fold_account(history)
        if account is None:
            return None
        self._set_plan(account_id, history[-1].position, account.plan)
        return self.plan_of(account_id)

    def __len__(self) -> int:
        return len(self._by_hash)

    def cached(self) -> list[tuple[str, CachedKey]]:
        return list(self._by_hash.items())

    async def resolve(self, key_hash: str) -> CachedKey | None:
        """A miss: catch up with the log, then look the key up in the database."""
        async with self._lock:
            await self.catch_up_locked()
            entry = self._by_hash.get(key_hash)
            if entry is not None:
                return entry
            own_before = self._own_last
            async with read_transaction(self._engine) as conn:
                key_id = await self._key_id_for(conn, key_hash)
                state = fold_key(await read_stream_in(conn, key_id)) if key_id else None
                if state is not None and state.account_id not in self._plans:
                    history = await read_stream_in(conn, state.account_id)
                    account = fold_account(history)
                    if account is not None:
                        self._set_plan(account.account_id, history[-1].position, account.plan)
            if state is None:
                return None
            entry = self._remember(key_hash, CachedKey(state))
            # This replica may have appended (say) a revocation of this key while the fold was being
            # read; it found no entry to change then, so it is applied now. The tailer would also
            # re-read it, but only after this request: the next one must already see it.
            if not self._replay_own_since(own_before, entry.key_id):
                self._forget(entry.key_id)  # too many to tell: answer this once, fold again next time
            return entry

    def _replay_own_since(self, seq: int, key_id: str) -> bool:
        """Apply own appends recorded after ``seq`` to ``key_id``; False when some were forgotten."""
        if seq < self._own_last - len(self._own_recent):
            return False
        self._apply_to_entries(
            recorded for n, recorded in self._own_recent if n > seq and recorded.stream_id == key_id
        )
        return True

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

    def _forget(self, key_id: str) -> None:
        key_hash = self._hash_by_id.pop(key_id, None)
        if key_hash is not None:
            self._by_hash.pop(key_hash, None)

    def replace(self, key_hash: str, state: KeyState) -> None:
        """Heal one entry from a fresh fold of its stream."""
        self._forget(state.key_id)
        self._remember(key_hash, CachedKey(state))

    def plans(self) -> list[tuple[str, tuple[int, str]]]:
        return list(self._plans.items())

    def replace_plan(self, account_id: str, position: int, plan: str) -> None:
        self._plans[account_id] = (position, plan)

    def _set_plan(self, account_id: str, position: int, plan: str) -> None:
        known = self._plans.get(account_id)
        if known is None or position > known[0]:
            self._plans[account_id] = (position, plan)

    def apply_own(self, batch: Sequence[RecordedEvent]) -> None:
        """This replica's committed append: effective at once, cursor moved only if it follows on.

        While a miss or a catch-up is reading (the lock is held), the cursor is left alone: their reads
        may predate this commit, and the tailer re-reads what the cursor has not passed.
        """
        for recorded in batch:
            self._own_last = next(self._own_seq)
            self._own_recent.append((self._own_last, recorded))
        self._apply_to_entries(batch)
        if not self._lock.locked() and batch and batch[0].prev_hash == self.head_hash:
            self.position, self.head_hash = batch[-1].position, self._chain_end(batch)

    def apply_committed(self, batch: Sequence[RecordedEvent]) -> None:
        """Events read from the log after ``position``, in order: they must continue the applied prefix."""
        if not batch:
            return
        head = self._chain_end(batch)
        self._apply_to_entries(batch)
        self.position, self.head_hash = batch[-1].position, head

    def _chain_end(self, batch: Sequence[RecordedEvent]) -> str:
        """The head hash after ``batch``, which must continue this view's chain event by event."""
        head = self.head_hash
        for recorded in batch:
            if recorded.prev_hash != head:
                raise LogMismatch(
                    f"event {recorded.position} does not follow this view's position {self.position}"
                )
            head = recorded.hash
        return head

    def _apply_to_entries(self, batch: Iterable[RecordedEvent]) -> None:
        for recorded in batch:
            event = recorded.data
            if isinstance(event, AccountOpened | AccountPlanChanged):
                self._set_plan(event.account_id, recorded.position, event.plan)
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
            elif isinstance(event, KeyUpdated):
                key_hash = self._hash_by_id.get(event.key_id)
                entry = self._by_hash.get(key_hash) if key_hash else None
                if entry is not None and recorded.position > entry.position:
                    entry.scopes = shared_scopes(event.scopes)
                    entry.domains = shared_domains(event.domains)
                    entry.expires_at = event.expires_at.timestamp() if event.expires_at else None
                    entry.operator = "platform:admin" in entry.scopes
                    entry.position = recorded.position

    async def catch_up(self) -> None:
        async with self._lock:
            await self.catch_up_locked()

    async def catch_up_locked(self) -> None:
        while True:
            async with read_transaction(self._engine) as conn:
                batch = await read_after_in(conn, self.position, limit=1000)
            if not batch:
                return
            try:
                self.apply_committed(batch)
            except LogMismatch as exc:
                self.mismatches += 1
                log.error("key_view_log_mismatch", error=str(exc), position=self.position)
                await self.heal_locked()

    async def heal_locked(self) -> None:
        """Re-read from the last verified cursor: re-applying from there is idempotent per key."""
        self.heals += 1
        if self.position != self.verified_position:
            self.position, self.head_hash = self.verified_position, self.verified_hash
            return
        # Even the verified point is not continued: the log itself changed under this view (see
        # `reservekit audit verify`). Drop everything and start again at the head; each key is then
        # folded from the log on its next use.
        self._by_hash.clear()
        self._hash_by_id.clear()
        self._plans.clear()
        await self.start()

    def mark_verified(self, position: int, hash_: str) -> None:
        self.verified_position, self.verified_hash = position, hash_

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def lock(self) -> asyncio.Lock:
        """Held while the cursor is read and moved; the self-check takes it too."""
        return self._lock
