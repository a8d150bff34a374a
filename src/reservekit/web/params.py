"""Query parameters every route reads the same way: timestamps, cursors, limits, id filters.

One mistake, one answer (docs/errors.md): a parameter that does not fit — a timestamp that is not
RFC 3339 with an offset, a cursor this API did not hand out (``web/pagination.py``), a limit out of
range, an over-long id — answers 400 ``invalid_request`` naming the parameter in ``field``, on every route.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar.params import Parameter

from reservekit.clock import parse_instant
from reservekit.web.problems import InvalidParameter

MAX_PAGE = 100
MAX_ID_CHARS = 64

Limit = Annotated[int, Parameter(ge=1, le=MAX_PAGE, description=f"page size, 1 to {MAX_PAGE}")]
IdFilter = Annotated[str | None, Parameter(max_length=MAX_ID_CHARS)]
InstantText = Annotated[str | None, Parameter(max_length=64, description="RFC 3339 with an offset")]


def instant(value: str, field: str) -> datetime:
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise InvalidParameter(f"{field} {exc}", field=field) from None


def optional_instant(value: str | None, field: str) -> datetime | None:
    return None if value is None else instant(value, field)
