"""Request-scoped values for controllers.

Controllers take one dependency, ``call: NamedDependency[ApiCall]``: Litestar resolves sibling
dependencies concurrently in a task group, which costs more per request than everything they do.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from reservekit.auth.key_view import CachedKey
from reservekit.events.types import Metadata
from reservekit.runtime import Runtime


class ApiCall:
    """The runtime, the authenticated key, and the metadata events written by this request carry."""

    __slots__ = ("_state", "runtime")

    def __init__(self, runtime: Runtime, state: dict[str, Any]) -> None:
        self.runtime = runtime
        self._state = state

    @property
    def caller(self) -> CachedKey:
        key: CachedKey = self._state["auth"]
        return key

    @property
    def metadata(self) -> Metadata:
        return metadata_of(self._state)


def provide_call(request: Request[Any, Any, Any]) -> ApiCall:
    return ApiCall(request.app.state.runtime, request.scope.setdefault("state", {}))


def provide_caller(request: Request[Any, Any, Any]) -> CachedKey:
    caller: CachedKey = request.scope["state"]["auth"]
    return caller


def provide_metadata(request: Request[Any, Any, Any]) -> Metadata:
    return metadata_of(request.scope.get("state", {}))


def metadata_of(state: dict[str, Any]) -> Metadata:
    caller: CachedKey | None = state.get("auth")
    return Metadata(
        actor_account_id=caller.account_id if caller else None,
        actor_key_id=caller.key_id if caller else None,
        request_id=state.get("request_id"),
        client_ip=state.get("client_ip"),
        user_agent=(state.get("user_agent") or "")[:256] or None,
        source="api",
    )
