"""``POST /v1/keys/verify`` without the framework's routing layers around it.

Verify is on other services' request path, so it is answered straight from the outermost ASGI layer
(inside ``RequestLog``, so it is still logged and timed): the same ``AuthMiddleware`` checks the
service key and its ``keys:verify`` scope and writes its usage row, then ``verify_key`` runs. What is
skipped is only what this one route does not use: routing, CORS (a call without ``Origin`` gets no CORS
headers anyway), the idempotency layer (verify opts out of it) and Litestar's two exception layers,
whose one job here (a database away is 503, anything else 500, as problem+json naming the request) is
done below. Any other request, a verify with ``Origin`` included, takes the ordinary path.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from reservekit.db import is_unavailable
from reservekit.web.problems import (
    DATABASE_UNAVAILABLE,
    PROBLEM_JSON,
    RETRY_AFTER_SECONDS,
    log_database_unavailable,
    problem_bytes,
)
from reservekit.web.verify import verify_key

PATH = "/v1/keys/verify"
log = structlog.get_logger(__name__)


class VerifyShortcut:
    __slots__ = ("_app", "_framework", "_verify")

    def __init__(self, framework: ASGIApp, *, app: Any, authenticated_verify: ASGIApp) -> None:
        """``framework``: the whole Litestar app; ``authenticated_verify``: ``verify_key`` already
        wrapped in the app's own ``AuthMiddleware``; ``app``: the Litestar app the handler reads."""
        self._framework = framework
        self._app = app
        self._verify = authenticated_verify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_plain_verify(scope):
            await self._framework(scope, receive, send)
            return
        # What routing would have put in the scope, for the middleware, the handler and RequestLog.
        scope["app"] = self._app
        scope["route_handler"] = verify_key
        scope["path_template"] = PATH
        scope["path_params"] = {}
        started = [False]

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        try:
            await self._verify(scope, receive, watched)
        except Exception as exc:
            if started[0]:
                raise
            await _answer_failure(send, exc, scope.get("state") or {})


def _is_plain_verify(scope: Scope) -> bool:
    if scope["type"] != ScopeType.HTTP or scope["path"] != PATH or scope["method"] != "POST":
        return False
    return all(name != b"origin" for name, _ in scope["headers"])


async def _answer_failure(send: Send, exc: Exception, state: dict[str, Any]) -> None:
    request_id = state.get("request_id")
    headers = [(b"content-type", PROBLEM_JSON.encode())]
    if request_id:
        headers.append((b"x-request-id", str(request_id).encode()))
    if is_unavailable(exc):
        log_database_unavailable(exc)
        status, body = 503, DATABASE_UNAVAILABLE.problem(request_id)
        headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
    else:
        log.exception("unhandled_error", exc_info=exc)
        status = 500
        body = problem_bytes(500, "Internal server error", "internal_error", request_id)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
