"""The key view's background task: tail the log, and check now and then that the view still equals it.

The self-check compares the view's cursor hash with the log's hash at that position (the chain makes
that one comparison cover every event before it), and a rotating sample of cached keys and plans with a
fold of their streams up to the cursor. A difference is counted, logged and healed: the cursor re-reads
from the last verified position, a differing entry is replaced by its fold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from itertools import groupby
from typing import TypeVar

import msgspec
import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from reservekit.auth.key_view import CachedKey, KeyView
from reservekit.background import WakeUp, stop_loop, wait_for_wakeup
from reservekit.db import DatabaseUnavailable, read_transaction
from reservekit.domain.accounts import fold_account
from reservekit.domain.events import RecordedEvent
from reservekit.domain.keys import fold_key
from reservekit.events.chain import GENESIS_HASH
from reservekit.events.store import row_to_event
from reservekit.events.tables import events

log = structlog.get_logger(__name__)
_T = TypeVar("_T")


class SelfCheck(msgspec.Struct, frozen=True):
    checked_at: float  # Unix seconds
    position: int
    log_head: int
    cursor_ok: bool
    keys_checked: int
    keys_mismatched: int
    plans_checked: int
    plans_mismatched: int
    healed: bool

    @property
    def ok(self) -> bool:
        """Whatever was found was healed, and the cursor agrees with the log now."""
        return self.cursor_ok


class KeyViewChecker:
    def __init__(self, view: KeyView, *, sample: int = 256) -> None:
        self._view = view
        self._sample = sample
        self._next_key = 0
        self._next_plan = 0
        self.last: SelfCheck | None = None
        self.keys_mismatched = 0
        self.plans_mismatched = 0
        self.cursor_mismatches = 0

    async def check(self) -> SelfCheck:
        view = self._view
        async with view.lock:
            cursor_ok, head = await self._cursor_matches()
            healed = False
            if not cursor_ok:
                self.cursor_mismatches += 1
                log.error(
                    "key_view_cursor_mismatch",
                    position=view.position,
                    verified_position=view.verified_position,
                )
                await view.heal_locked()
                await view.catch_up_locked()
                healed = True
                cursor_ok, head = await self._cursor_matches()
            if cursor_ok:
                view.mark_verified(view.position, view.head_hash)
            keys_checked, keys_bad = await self._check_keys()
            plans_checked, plans_bad = await self._check_plans()
        self.keys_mismatched += keys_bad
        self.plans_mismatched += plans_bad
        self.last = SelfCheck(
            checked_at=time.time(),
            position=view.position,
            log_head=head,
            cursor_ok=cursor_ok,
            keys_checked=keys_checked,
            keys_mismatched=keys_bad,
            plans_checked=plans_checked,
            plans_mismatched=plans_bad,
            healed=healed or bool(keys_bad or plans_bad),
        )
        return self.last

    async def _cursor_matches(self) -> tuple[bool, int]:
        view = self._view
        async with read_transaction(view.engine) as conn:
            head = int(await conn.scalar(select(func.coalesce(func.max(events.c.position), 0))) or 0)
            logged = (
                await conn.scalar(select(events.c.hash).where(events.c.position == view.position))
                if view.position
                else GENESIS_HASH
            )
        return logged == view.head_hash, head

    def _rotating(self, items: list[_T], start: int) -> list[_T]:
        """Up to ``sample`` items from ``start`` on, wrapping: successive checks cover the whole cache."""
        if len(items) <= self._sample:
            return items
        start %= len(items)
        return (items[start:] + items[:start])[: self._sample]

    async def _streams_until(
        self, stream_ids: Sequence[str], position: int
    ) -> dict[str, list[RecordedEvent]]:
        if not stream_ids:
            return {}
        query = (
            select(events)
            .where(events.c.stream_id.in_(stream_ids), events.c.position <= position)
            .order_by(events.c.stream_id, events.c.stream_version)
        )
        async with read_transaction(self._view.engine) as conn:
            recorded = [row_to_event(row) for row in await conn.execute(query)]
        return {stream: list(group) for stream, group in groupby(recorded, key=lambda r: r.stream_id)}

    async def _check_keys(self) -> tuple[int, int]:
        view = self._view
        cursor = view.position
        # An entry ahead of the cursor holds this replica's own newer appends: checked on a later round.
        sample = [(h, e) for h, e in self._rotating(view.cached(), self._next_key) if e.position <= cursor]
        self._next_key += self._sample
        streams = await self._streams_until([e.key_id for _, e in sample], cursor)
        bad = 0
        for key_hash, entry in sample:
            state = fold_key(streams.get(entry.key_id, []))
            if state is None:
                continue  # its creation is past the cursor's read: nothing to compare yet
            if not entry.same_as(CachedKey(state)):
                bad += 1
                log.error("key_view_entry_mismatch", key_id=entry.key_id, position=cursor)
                view.replace(key_hash, state)
        return len(sample), bad

    async def _check_plans(self) -> tuple[int, int]:
        view = self._view
        cursor = view.position
        plans = self._rotating([(a, p) for a, p in view.plans() if p[0] <= cursor], self._next_plan)
        self._next_plan += self._sample
        streams = await self._streams_until([account_id for account_id, _ in plans], cursor)
        bad = 0
        for account_id, (_, plan) in plans:
            history = streams.get(account_id, [])
            account = fold_account(history)
            if account is not None and account.plan != plan:
                bad += 1
                log.error("key_view_plan_mismatch", account_id=account_id, position=cursor)
                view.replace_plan(account_id, history[-1].position, account.plan)
        return len(plans), bad


class KeyViewTailer:
    """Background task: applies new lifecycle events on every wake-up or poll; self-checks periodically."""

    def __init__(
        self,
        view: KeyView,
        wakeup: WakeUp,
        *,
        poll_interval: float,
        checker: KeyViewChecker | None = None,
        check_interval: float = 30.0,
    ) -> None:
        self._view = view
        self._wakeup = wakeup
        self._poll_interval = poll_interval
        self._checker = checker
        self._check_interval = check_interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reservekit-key-view")

    async def stop(self) -> None:
        await stop_loop(self._task, self._stopping, self._wakeup.notify)
        self._task = None

    async def _run(self) -> None:
        waiter = self._wakeup.subscribe()
        next_check = time.monotonic() + self._check_interval
        try:
            while not self._stopping.is_set():
                try:
                    await self._view.catch_up()
                    if self._checker is not None and time.monotonic() >= next_check:
                        next_check = time.monotonic() + self._check_interval
                        await self._checker.check()
                except (DatabaseUnavailable, SQLAlchemyError, OSError) as exc:
                    log.warning("key_view_catch_up_failed", error=str(exc))
                await wait_for_wakeup(waiter, self._poll_interval)
        finally:
            self._wakeup.unsubscribe(waiter)
