"""The one dependency every controller takes: ``call: NamedDependency[ApiCall]``.

One dependency, not several: Litestar resolves sibling dependencies concurrently in a task group, which
costs more per request than everything they do. ``ApiCall`` carries what a controller may use — the
application service (every write, and key/account reads folded from the log), an engine for read-only
queries over projections, the clock — plus who is calling and the metadata their events carry. It
deliberately does not carry the ``Runtime``: controllers translate HTTP to commands and results to
HTTP, and reach nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.auth.key_view import CachedKey
from reservekit.clock import Clock
from reservekit.domain.events import Metadata
from reservekit.usecases.application import Application

MAX_USER_AGENT_CHARS = 256


@dataclass(frozen=True)
class WebServices:
    """Built once by ``create_app``; shared by every request."""

    application: Application
    engine: AsyncEngine
    clock: Clock


class ApiCall:
    __slots__ = ("_services", "_state")

    def __init__(self, services: WebServices, state: dict[str, Any]) -> None:
        self._services = services
        self._state = state

    @property
    def application(self) -> Application:
        return self._services.application

    @property
    def engine(self) -> AsyncEngine:
        """For read-only queries; every write goes through ``application``."""
        return self._services.engine

    @property
    def clock(self) -> Clock:
        return self._services.clock

    @property
    def client_ip(self) -> str:
        return str(self._state["client_ip"])

    @property
    def caller(self) -> CachedKey:
        key: CachedKey = self._state["auth"]
        return key

    @property
    def metadata(self) -> Metadata:
        return metadata_of(self._state)

    def visible_account(self, requested: str | None = None) -> str | None:
        """Whose records the caller may read: platform:admin any one (or all, None); others their own."""
        return requested if self.caller.operator else self.caller.account_id


def provide_call(request: Request[Any, Any, Any]) -> ApiCall:
    return ApiCall(request.app.state.services, request.scope.setdefault("state", {}))


def metadata_of(state: dict[str, Any]) -> Metadata:
    caller: CachedKey | None = state.get("auth")
    return Metadata(
        actor_account_id=caller.account_id if caller else None,
        actor_key_id=caller.key_id if caller else None,
        request_id=state.get("request_id"),
        client_ip=state.get("client_ip"),
        user_agent=(state.get("user_agent") or "")[:MAX_USER_AGENT_CHARS] or None,
        source="api",
    )
