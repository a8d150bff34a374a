"""Responses that carry a secret: never stored by any cache, and pointing at the resource they made."""

from __future__ import annotations

from typing import TypeVar

from litestar import Response

T = TypeVar("T")

# RFC 9111: no-store forbids every cache (browser, proxy, CDN) from keeping the body.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def created_with_secret(body: T, location: str) -> Response[T]:
    """201 Created with ``Location`` and ``Cache-Control: no-store``: the secret is shown this once."""
    return Response(body, status_code=201, headers={**NO_STORE, "Location": location})
