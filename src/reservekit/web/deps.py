"""Request-scoped values for controllers: who is calling, and the metadata their events carry."""

from __future__ import annotations

from typing import Any

from litestar import Request

from reservekit.auth.key_view import CachedKey
from reservekit.events.types import Metadata


def provide_caller(request: Request[Any, Any, Any]) -> CachedKey:
    caller: CachedKey = request.scope["state"]["auth"]
    return caller


def provide_metadata(request: Request[Any, Any, Any]) -> Metadata:
    state = request.scope.get("state", {})
    caller: CachedKey | None = state.get("auth")
    return Metadata(
        actor_account_id=caller.account_id if caller else None,
        actor_key_id=caller.key_id if caller else None,
        request_id=state.get("request_id"),
        client_ip=state.get("client_ip"),
        user_agent=(state.get("user_agent") or "")[:256] or None,
        source="api",
    )
