"""The two logs a projection can follow. Both are gapless and ordered by commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from reservekit.domain.events import RecordedEvent
from reservekit.events.store import head_position_in, read_after_in
from reservekit.events.tables import events
from reservekit.usage.records import UsageRecord, read_usage_after_in, usage_head_in, usage_position_as_of


class Positioned(Protocol):
    @property
    def position(self) -> int: ...


ItemT = TypeVar("ItemT", bound=Positioned)


@dataclass(frozen=True)
class LogSource(Generic[ItemT]):
    name: str
    head: Callable[[AsyncConnection], Awaitable[int]]
    read_after: Callable[..., Awaitable[Sequence[ItemT]]]
    position_as_of: Callable[[AsyncConnection, int], Awaitable[int]]


async def _event_position_as_of(conn: AsyncConnection, micros: int) -> int:
    value = await conn.scalar(
        select(func.coalesce(func.max(events.c.position), 0)).where(events.c.recorded_at_us <= micros)
    )
    return int(value or 0)


EVENTS: LogSource[RecordedEvent] = LogSource("events", head_position_in, read_after_in, _event_position_as_of)
USAGE: LogSource[UsageRecord] = LogSource("usage", usage_head_in, read_usage_after_in, usage_position_as_of)
AnySource = LogSource[Any]
