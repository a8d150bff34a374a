"""What a projection is: a name, a version, its tables, and an apply function over a batch of events.

A projection's tables belong to the projection, not to Alembic: they are derived data, created from
``define`` (with a suffix for rebuilds), and dropped and rebuilt from the log when ``version`` changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic, Protocol, TypeVar

import msgspec
from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from reservekit.domain.events import RecordedEvent
from reservekit.projecting.sources import EVENTS, LogSource

TablesT = TypeVar("TablesT", bound=tuple[Table, ...])
ItemT = TypeVar("ItemT")
RangeFold = Callable[[AsyncConnection, TablesT, int, int], Awaitable[None]]


class Replay(Protocol):
    """One rebuild's fold: it may keep in memory what it has written and read nothing back, since
    nothing but this rebuild writes its fresh tables. ``finish`` writes what it still holds."""

    async def apply(self, conn: AsyncConnection, tables: Any, batch: Sequence[Any]) -> None: ...

    async def finish(self, conn: AsyncConnection, tables: Any) -> None: ...


@dataclass(frozen=True)
class Projection(Generic[TablesT, ItemT]):
    """``source`` is the log it follows: the lifecycle events (default) or the usage log.

    ``folds`` names the event classes ``apply`` reacts to, when it ignores all others: a rebuild then
    reads only those from the log (``folded_types``). ``None`` means every event is read.

    ``apply_range``, when given, folds the log's items at positions (after, through] inside the
    database (SQL over the log's own table) and does what ``apply`` does for those items: a rebuild
    then reads nothing into this process, it hands the database one range after another.
    ``range_lanes`` split ``apply_range`` into parts that write disjoint tables: a rebuild on
    PostgreSQL runs them side by side, each on its own connection, so the database uses more than one
    core (a single INSERT … SELECT never runs in parallel).

    ``replay``, when given, makes the fold a rebuild uses instead of ``apply`` (``Replay``): a projection
    whose ``apply`` reads its own state back for every batch keeps it in memory through a rebuild.
    """

    name: str
    version: int
    define: Callable[[MetaData, str], TablesT]
    apply: Callable[[AsyncConnection, TablesT, Sequence[ItemT]], Awaitable[None]]
    description: str = ""
    source: LogSource[Any] = EVENTS
    folds: tuple[type[msgspec.Struct], ...] | None = None
    apply_range: RangeFold[TablesT] | None = None
    range_lanes: tuple[RangeFold[TablesT], ...] = ()
    replay: Callable[[], Replay] | None = None

    def tables(self, suffix: str = "") -> TablesT:
        return self.define(MetaData(), suffix)

    @cached_property
    def live(self) -> TablesT:
        return self.tables()

    async def read_after(
        self, conn: AsyncConnection, after: int, *, limit: int, until: int | None = None
    ) -> Sequence[ItemT]:
        """Its log after ``after``, only the event types it folds (a rebuild's read; the live runner
        reads every event so that its checkpoint moves with the head)."""
        if self.folded_types is None:
            return await self.source.read_after(conn, after, limit=limit, until=until)
        return await self.source.read_after(conn, after, limit=limit, until=until, types=self.folded_types)

    @cached_property
    def folded_types(self) -> frozenset[str] | None:
        """The stored ``type`` of each event class in ``folds``; ``None`` when it reads every event."""
        if self.folds is None:
            return None
        return frozenset(str(cls.__struct_config__.tag) for cls in self.folds)


AnyProjection = Projection[tuple[Table, ...], Any]
EventProjection = Projection[TablesT, RecordedEvent]
