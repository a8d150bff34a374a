"""What a projection is: a name, a version, its tables, and an apply function over a batch of events.

A projection's tables belong to the projection, not to Alembic: they are derived data, created from
``define`` (with a suffix for rebuilds), and dropped and rebuilt from the log when ``version`` changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Generic, TypeVar

from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from reservekit.events.types import RecordedEvent

TablesT = TypeVar("TablesT", bound=tuple[Table, ...])


@dataclass(frozen=True)
class Projection(Generic[TablesT]):
    name: str
    version: int
    define: Callable[[MetaData, str], TablesT]
    apply: Callable[[AsyncConnection, TablesT, Sequence[RecordedEvent]], Awaitable[None]]
    description: str = ""

    def tables(self, suffix: str = "") -> TablesT:
        return self.define(MetaData(), suffix)

    @cached_property
    def live(self) -> TablesT:
        return self.tables()


AnyProjection = Projection[tuple[Table, ...]]
