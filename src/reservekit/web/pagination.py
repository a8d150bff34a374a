"""A page of results and the cursor of the next one (``web/params.py`` reads cursors and limits)."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")


class Page(msgspec.Struct, Generic[T]):
    data: list[T]
    next_cursor: str | None
