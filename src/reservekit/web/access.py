"""Route options the auth middleware reads: which scopes an endpoint accepts, or that it is public."""

from __future__ import annotations

from typing import Any

PUBLIC: dict[str, Any] = {"public": True}


def requires(*scopes: str) -> dict[str, Any]:
    """Any one of ``scopes`` grants access."""
    return {"scopes": frozenset(scopes)}
