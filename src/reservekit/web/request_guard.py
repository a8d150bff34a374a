"""The one place hostile request input is refused before it reaches a controller or the database.

- **Bodies** (``GuardedRequest.json``): every JSON body on every route is decoded here. Invalid UTF-8,
  nesting deeper than ``MAX_BODY_DEPTH`` and a NUL character in any string answer 400 naming the field,
  instead of msgspec's ``UnicodeDecodeError``/``RecursionError`` turning into a 500.
- **Path and query** (``nul_parameter``): PostgreSQL cannot store NUL in text and SQLite can; both
  backends must answer alike, so a NUL anywhere in the path or query string is a 400 before any query.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from litestar import Request
from litestar.exceptions import ValidationException

MAX_BODY_DEPTH = 32  # no body of this API nests more than 3 levels


def invalid_body(detail: str, field: str | None = None) -> ValidationException:
    extra = [{"key": field, "message": detail}] if field else None
    return ValidationException(detail=detail, extra=extra)


def body_problem(value: Any) -> tuple[str, str | None] | None:
    """(detail, field) for the first string holding NUL or the first level nested too deep, else None.

    Iterative, so a hostile body cannot exhaust the stack here either.
    """
    stack: list[tuple[Any, str | None, int]] = [(value, None, 0)]
    while stack:
        item, field, depth = stack.pop()
        if depth > MAX_BODY_DEPTH:
            return f"the JSON body nests deeper than {MAX_BODY_DEPTH} levels", field
        if isinstance(item, str):
            if "\x00" in item:
                return f"{field or 'the body'} must not contain a NUL character", field
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return "a field name must not contain a NUL character", field
                stack.append((child, key if field is None else f"{field}.{key}", depth + 1))
        elif isinstance(item, list):
            stack.extend((child, field, depth + 1) for child in item)
    return None


class GuardedRequest(Request[Any, Any, Any]):
    """Litestar's request with JSON decoding that never raises anything but a 400."""

    async def json(self) -> Any:
        try:
            value = await super().json()
        except UnicodeDecodeError:
            raise invalid_body("the JSON body is not valid UTF-8") from None
        except RecursionError:
            raise invalid_body(f"the JSON body nests deeper than {MAX_BODY_DEPTH} levels") from None
        problem = body_problem(value)
        if problem is not None:
            raise invalid_body(*problem)
        return value


def nul_parameter(path: str, query_string: bytes) -> str | None:
    """The name of the path or query parameter holding a NUL character (``path`` for the path)."""
    if "\x00" in path:
        return "path"
    if b"%00" not in query_string.lower() and b"\x00" not in query_string:
        return None
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "") or "query"
    return "query"
