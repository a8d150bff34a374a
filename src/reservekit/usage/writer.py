"""Batches usage rows off the request path: a bounded buffer flushed every interval or every N rows.

``record`` never blocks and never awaits. If the database is down the batch stays buffered and is
retried with backoff; only when the buffer is full is a row given up, and every such row is counted
in a metric and reported in a (throttled) log line. ``stop`` flushes what is left.

With a spool (``spool.py``) every row is also appended to a local file as it is recorded, so a killed
process loses nothing: ``replay_spool`` at the next start inserts what never reached the database.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.background import stop_loop, wait_for_wakeup
from reservekit.clock import Clock, to_micros
from reservekit.db import DatabaseUnavailable
from reservekit.usage.log import append_usage, missing_rows
from reservekit.usage.records import UsageRecord
from reservekit.usage.spool import UsageSpool, orphaned_segments

log = structlog.get_logger(__name__)


class UsageStats:
    """Counters the metrics endpoint reads."""

    def __init__(self) -> None:
        self.written = 0
        self.dropped = 0
        self.writes = 0
        self.failures = 0
        self.replayed = 0
        self.spool_failures = 0


class UsageWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        *,
        max_buffer: int = 100_000,
        batch_size: int = 2_000,
        flush_interval: float = 1.0,
        on_written: Callable[[], None] | None = None,
        spool: UsageSpool | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._buffer: deque[UsageRecord] = deque()
        self._max_buffer = max_buffer
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._on_written = on_written
        self._full = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._last_drop_log = float("-inf")
        self._spool = spool
        self.stats = UsageStats()

    @property
    def depth(self) -> int:
        return len(self._buffer)

    def record(self, record: UsageRecord) -> None:
        if len(self._buffer) >= self._max_buffer:
            self._drop(1, "buffer full")
            return
        self._buffer.append(record)
        if self._spool is not None:
            try:
                self._spool.append(record)
            except OSError as exc:  # a full disk must not fail the request; the row is still buffered
                self.stats.spool_failures += 1
                if self.stats.spool_failures == 1:
                    log.error("usage_spool_write_failed", error=str(exc))
        if len(self._buffer) >= self._batch_size:
            self._full.set()

    async def flush(self) -> None:
        """Write the rows buffered when called (in batches); raises if the database refuses.

        Rows recorded while this flush is writing wait for the next one: draining until empty would,
        under load, turn one write per interval into a stream of small writes.
        """
        async with self._lock:
            if self._spool is not None:
                self._spool.seal()  # the sealed segments hold exactly the rows buffered now
            remaining = len(self._buffer)
            while remaining:
                count = min(remaining, self._batch_size)
                batch = [self._buffer[i] for i in range(count)]
                try:
                    await append_usage(self._engine, batch, recorded_at_us=to_micros(self._clock.now()))
                except Exception:
                    self.stats.failures += 1
                    raise
                for _ in range(count):
                    self._buffer.popleft()
                remaining -= count
                self.stats.written += count
                self.stats.writes += 1
                if self._on_written:
                    self._on_written()
            if self._spool is not None:
                self._spool.discard_sealed()

    async def drain(self) -> None:
        """Flush until nothing is buffered (shutdown and tests; not the periodic path)."""
        while self._buffer:
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reservekit-usage-writer")

    async def stop(self, *, attempts: int = 5) -> None:
        """Graceful shutdown: stop the loop, then flush what is left, retrying a few times."""
        await stop_loop(self._task, self._stopping, self._full.set)
        self._task = None
        delay = 0.2
        for attempt in range(1, attempts + 1):
            try:
                await self.drain()
                if self._spool is not None:
                    self._spool.close(keep=False)
                return
            except (DatabaseUnavailable, SQLAlchemyError, OSError) as exc:
                log.warning(
                    "usage_final_flush_failed", attempt=attempt, error=str(exc), buffered=len(self._buffer)
                )
                await asyncio.sleep(delay)
                delay *= 2
        if self._spool is not None:
            # Not lost: the spool keeps them for the next start's replay.
            self._spool.close(keep=True)
            log.error("usage_rows_left_in_spool", count=len(self._buffer))
        else:
            self._drop(len(self._buffer), "database unavailable at shutdown")
        self._buffer.clear()

    async def replay_spool(self) -> int:
        """Insert the rows of dead processes' spool segments the database lacks; returns how many."""
        if self._spool is None:
            return 0
        with orphaned_segments(self._spool.directory) as segments:
            rows = [row for _path, segment in segments for row in segment]
            missing = await missing_rows(self._engine, rows)
            for start in range(0, len(missing), self._batch_size):
                batch = missing[start : start + self._batch_size]
                await append_usage(self._engine, batch, recorded_at_us=to_micros(self._clock.now()))
        if segments:
            self.stats.replayed += len(missing)
            log.warning("usage_spool_replayed", segments=len(segments), rows=len(rows), inserted=len(missing))
        return len(missing)

    async def _run(self) -> None:
        backoff = self._flush_interval
        while not self._stopping.is_set():
            await wait_for_wakeup(self._full, backoff)
            if self._stopping.is_set():
                return
            try:
                await self.flush()
                backoff = self._flush_interval
            except (DatabaseUnavailable, SQLAlchemyError, OSError) as exc:
                backoff = min(backoff * 2, 30.0)
                log.warning(
                    "usage_flush_failed", error=str(exc), buffered=len(self._buffer), retry_in=backoff
                )

    def _drop(self, count: int, reason: str) -> None:
        if count <= 0:
            return
        self.stats.dropped += count
        now = self._clock.timestamp()
        if now - self._last_drop_log >= 10.0 or reason.endswith("shutdown"):
            self._last_drop_log = now
            log.error("usage_rows_dropped", count=count, total_dropped=self.stats.dropped, reason=reason)
