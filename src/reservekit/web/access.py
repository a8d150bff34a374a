"""Route options the auth middleware reads: which scopes an endpoint accepts, or that it is public."""

from __future__ import annotations

from typing import Any

PUBLIC: dict[str, Any] = {"public": True}


def requires(*scopes: str) -> dict[str, Any]:
    """Any one of ``scopes`` grants access."""
    return {"scopes": frozenset(scopes)}


def public_with_ip_budget(per_minute: int) -> dict[str, Any]:
    """A public route whose requests are limited per client IP in the middleware, before the body is read."""
    return {"public": True, "per_ip_per_minute": per_minute}
