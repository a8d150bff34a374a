"""One access line and one latency observation per HTTP request, for every request the app answers.

It wraps the whole Litestar app (``app.asgi_handler``), outside routing and the exception handlers:
route middleware only runs for routed requests, and 404s, 405s and CORS preflights belong in an access
log too. It reads what the inner layers already worked out from the same scope once the response is
done (the route template from the router; request id, client IP and key from ``AuthMiddleware``), so
it parses no header on a routed request and adds no await of its own.

Only fields chosen here are logged: never a header, a body or the raw path (which may hold anything a
client typed, a pasted key included). The route is the template (``/v1/api-keys/{key_id}``); a request
no route matched is ``unmatched``, and an unusual method is ``OTHER``, so the latency histogram's labels
stay a small fixed set however hostile the traffic.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from reservekit.auth.client_ip import Network, client_ip
from reservekit.metrics import Metrics

UNMATCHED = "unmatched"
OTHER_METHOD = "OTHER"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

log = structlog.get_logger("reservekit.access")


class RequestLog:
    __slots__ = ("_app", "_lines", "_metrics", "_trusted")

    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, trusted: tuple[Network, ...], access_log: bool
    ) -> None:
        self._app = app
        self._metrics = metrics
        self._trusted = trusted
        self._lines = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        # [status, response headers]: 500 stands if the app fails before it answers.
        answer: list[Any] = [500, ()]

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer[0] = message["status"]
                answer[1] = message.get("headers", ())
            await send(message)

        try:
            await self._app(scope, receive, observed)
        finally:
            self._finish(scope, answer[0], answer[1], time.perf_counter() - started)

    def _finish(self, scope: HTTPScope, status: int, headers: Any, seconds: float) -> None:
        method = scope["method"] if scope["method"] in KNOWN_METHODS else OTHER_METHOD
        route = scope.get("path_template") or UNMATCHED
        self._metrics.observe_request(method, route, status, seconds)
        if not self._lines:
            return
        state = scope.get("state") or {}
        key = state.get("auth")
        log.info(
            "http_request",
            method=method,
            route=route,
            status=status,
            latency_ms=round(seconds * 1000, 3),
            # Set by AuthMiddleware on routed requests; a 404/405 has its id only in the response.
            request_id=state.get("request_id") or _header(headers, b"x-request-id"),
            key_id=key.key_id if key is not None else None,
            client_ip=state.get("client_ip") or self._client_ip(scope),
        )

    def _client_ip(self, scope: HTTPScope) -> str:
        peer = scope.get("client")
        return client_ip(
            peer[0] if peer else None, _header(scope["headers"], b"x-forwarded-for"), self._trusted
        )


def _header(headers: Any, name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None
