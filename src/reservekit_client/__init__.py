"""Python client for the ReserveKit key authority: sync and async REST clients, and an ASGI middleware
that lets other services check ``sk_rsv_`` keys locally and still refuse a revoked key within
milliseconds. See docs/verify.md."""

from __future__ import annotations

__version__ = "0.1.0"

from reservekit_client._http import FeedItem, Position, RetryPolicy
from reservekit_client.aio import AsyncReserveKitClient
from reservekit_client.client import ReserveKitClient
from reservekit_client.errors import (
    AuthenticationError,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    ReserveKitError,
    ServerError,
    ServiceUnavailable,
)

__all__ = [
    "AsyncReserveKitClient",
    "AuthenticationError",
    "Conflict",
    "FeedItem",
    "InvalidRequest",
    "NotFound",
    "PermissionDenied",
    "Position",
    "RateLimited",
    "ReserveKitClient",
    "ReserveKitError",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "__version__",
]
