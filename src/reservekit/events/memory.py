"""The event log in a list: the same contract as ``SqlEventStore``, for fast tests without a database.

Appends are serialised by one ``asyncio.Lock`` (the SQL store's log-wide lock), numbered and chained by
the same ``chain.seal``, and a stale expected version writes nothing. It keeps nothing across restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from reservekit.clock import Clock, SystemClock, to_micros
from reservekit.domain.events import Metadata, RecordedEvent
from reservekit.events.chain import seal
from reservekit.usecases.ports import AppendListener, ConcurrencyConflict, StreamWrite


class InMemoryEventStore:
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._log: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._lock = asyncio.Lock()
        self._listeners: list[AppendListener] = []

    def on_append(self, listener: AppendListener) -> None:
        self._listeners.append(listener)

    async def append(self, writes: Sequence[StreamWrite], metadata: Metadata) -> list[RecordedEvent]:
        async with self._lock:
            for write in writes:
                actual = len(self._streams.get(write.stream_id, ()))
                if actual != write.expected_version:
                    raise ConcurrencyConflict(write.stream_id, write.expected_version, actual)
            last = (self._log[-1].position, self._log[-1].hash) if self._log else None
            _rows, recorded = seal(writes, metadata, head=last, recorded_at_us=to_micros(self._clock.now()))
            for event in recorded:
                self._log.append(event)
                self._streams.setdefault(event.stream_id, []).append(event)
        for listener in self._listeners:
            listener(recorded)
        return recorded

    async def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        return list(self._streams.get(stream_id, ()))

    async def read_after(
        self, position: int, *, limit: int = 1000, until: int | None = None
    ) -> list[RecordedEvent]:
        # Positions are 1, 2, …, so position N sits at index N - 1.
        end = len(self._log) if until is None else min(until, len(self._log))
        return self._log[max(position, 0) : end][:limit]

    async def head(self) -> int:
        return len(self._log)
