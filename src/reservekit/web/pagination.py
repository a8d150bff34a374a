"""Cursor pagination: the cursor is the last id of the previous page; ids sort stably."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")
MAX_PAGE = 100


class Page(msgspec.Struct, Generic[T]):
    data: list[T]
    next_cursor: str | None
