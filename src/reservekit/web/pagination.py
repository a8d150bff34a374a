"""A page of results and its cursor: one opaque format on every listed route.

A cursor is ``base64url(JSON [listing, value])`` without padding: the listing it came from (so a
cursor of one route is refused on another) and where the next page starts (the last id, a log
position, or a flag's ``[first_seen_us, id]``). Clients pass ``next_cursor`` back untouched; anything
this API did not hand out for that route answers 400 ``invalid_request`` with ``field`` ``cursor``,
before any query (``web/params.py``'s rule: one mistake, one answer).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec
from litestar.params import Parameter

from reservekit.web.problems import InvalidParameter

T = TypeVar("T")

Listing = Literal[
    "accounts",
    "api_keys",
    "services",
    "webhook_endpoints",
    "deliveries",
    "audit_events",
    "audit_usage",
    "flags",
]
MAX_CURSOR_CHARS = 200
MAX_POSITION = 2**63 - 1
# Ids this API makes: a lower-case prefix, an underscore, letters and digits (ids.py).
_ID = re.compile(r"[a-z]{2,12}_[A-Za-z0-9]{1,48}")
_encoder = msgspec.json.Encoder()

Cursor = Annotated[
    str | None,
    Parameter(
        max_length=MAX_CURSOR_CHARS,
        description="next_cursor of the previous page, unchanged (opaque; omit for the first page)",
    ),
]


class Page(msgspec.Struct, Generic[T]):
    data: list[T]
    next_cursor: str | None


def encode_cursor(listing: Listing, value: str | int | tuple[int, str]) -> str:
    raw = _encoder.encode([listing, list(value) if isinstance(value, tuple) else value])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decoded(listing: Listing, cursor: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, value = msgspec.json.decode(raw, type=tuple[str, Any])
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise _refused() from None
    if kind != listing:
        raise _refused()
    return value


def _refused() -> InvalidParameter:
    return InvalidParameter("cursor is not one this API returned for this listing", field="cursor")


def id_after(listing: Listing, cursor: str | None) -> str | None:
    """The last id of the previous page (accounts, keys, services, webhook endpoints)."""
    if cursor is None:
        return None
    value = _decoded(listing, cursor)
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise _refused()
    return value


def position_after(listing: Listing, cursor: str | None) -> int | None:
    """A log position or sequence number (audit events and usage, webhook deliveries)."""
    if cursor is None:
        return None
    value = _decoded(listing, cursor)
    if type(value) is not int or not 0 <= value <= MAX_POSITION:
        raise _refused()
    return value


def flag_after(cursor: str | None) -> tuple[int, str] | None:
    if cursor is None:
        return None
    value = _decoded("flags", cursor)
    if not (isinstance(value, list) and len(value) == 2):
        raise _refused()
    first_seen, flag_id = value
    valid_id = isinstance(flag_id, str) and flag_id.startswith("flg_") and _ID.fullmatch(flag_id)
    if type(first_seen) is not int or not 0 <= first_seen <= MAX_POSITION or not valid_id:
        raise _refused()
    return first_seen, flag_id


def next_cursor(listing: Listing, value: str | int | tuple[int, str] | None) -> str | None:
    return None if value is None else encode_cursor(listing, value)
