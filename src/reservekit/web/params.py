"""Query parameters every route reads the same way: timestamps, cursors, limits, id filters.

One mistake, one answer (docs/errors.md): a parameter that does not fit — a timestamp that is not
RFC 3339 with an offset, a cursor this API did not hand out, a limit out of range, an over-long id —
answers 400 ``invalid_request`` naming the parameter in ``field``, on every route.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar.params import Parameter

from reservekit.audit.flags import FlagPosition
from reservekit.clock import parse_instant
from reservekit.web.problems import InvalidParameter

MAX_PAGE = 100
MAX_ID_CHARS = 64

Limit = Annotated[int, Parameter(ge=1, le=MAX_PAGE, description=f"page size, 1 to {MAX_PAGE}")]
IdCursor = Annotated[
    str | None, Parameter(max_length=MAX_ID_CHARS, description="the last id of the previous page")
]
PositionCursor = Annotated[
    int, Parameter(ge=0, le=2**63 - 1, description="the last position of the previous page")
]
FlagCursor = Annotated[str | None, Parameter(max_length=128, description="next_cursor of the previous page")]
IdFilter = Annotated[str | None, Parameter(max_length=MAX_ID_CHARS)]
InstantText = Annotated[str | None, Parameter(max_length=64, description="RFC 3339 with an offset")]


def instant(value: str, field: str) -> datetime:
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise InvalidParameter(f"{field} {exc}", field=field) from None


def optional_instant(value: str | None, field: str) -> datetime | None:
    return None if value is None else instant(value, field)


def flag_position(cursor: str | None) -> FlagPosition | None:
    if not cursor:
        return None
    first, _, flag_id = cursor.partition(".")
    # isascii: str.isdigit() accepts '²', which int() refuses; the bound keeps it a 64-bit column value.
    digits = first.isascii() and first.isdigit() and len(first) <= 19 and int(first) < 2**63
    if not digits or not flag_id.startswith("flg_"):
        raise InvalidParameter("cursor is not one this API returned", field="cursor")
    return int(first), flag_id


def flag_cursor(position: FlagPosition | None) -> str | None:
    return None if position is None else f"{position[0]}.{position[1]}"
