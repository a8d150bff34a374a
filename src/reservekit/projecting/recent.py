"""The events this process appended lately, so read-your-writes need not read them back.

After a write the caller brings the lifecycle projections up to its own position (``apply_up_to``).
The events it needs are nearly always the ones it has just appended: the store hands every committed
batch to its listeners, exactly as sealed (the chain's values, redacted as stored), and this keeps the
last few hundred by position. A gap (another replica's append, or one evicted) means the log is read
as before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from reservekit.domain.events import RecordedEvent


class RecentAppends:
    def __init__(self, capacity: int = 512) -> None:
        self._by_position: dict[int, RecordedEvent] = {}
        self._order: deque[int] = deque()
        self._capacity = capacity

    def remember(self, recorded: Sequence[RecordedEvent]) -> None:
        """An append listener (``SqlEventStore.on_append``): called after each commit."""
        for event in recorded:
            self._by_position[event.position] = event
            self._order.append(event.position)
        while len(self._order) > self._capacity:
            self._by_position.pop(self._order.popleft(), None)

    def between(self, after: int, until: int) -> list[RecordedEvent] | None:
        """Every event with ``after < position <= until``, in order; None if any one is not held."""
        found = [self._by_position.get(position) for position in range(after + 1, until + 1)]
        if not found or any(event is None for event in found):
            return None
        return [event for event in found if event is not None]
