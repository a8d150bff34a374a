"""CORS for browser callers, answered before authentication.

A browser's preflight carries no key, so it must not meet the key check (it would get 401 and spend the
caller's failed-authentication budget). Preflights are answered here; the real request then goes
through authentication, where a domain-restricted key's own rule decides (SPEC §4 row 6).

Two policies: the scheduling data routes (``/v1/services``) are for integrators' pages on any domain, so
any origin may ask (the key's domains decide); every other ``/v1`` route manages keys, accounts or the
audit trail and is open to the origins in ``RESERVEKIT_CORS_ALLOWED_ORIGINS`` only (none by default).
Keys travel in ``Authorization``, never in cookies, so credentials are never allowed.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from reservekit.web.request_ids import request_id_for

DATA_PREFIXES = ("/v1/services",)
ALLOW_METHODS = b"GET, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = b"Authorization, Content-Type, Idempotency-Key, X-Request-Id"
EXPOSE_HEADERS = (
    b"X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, "
    b"RateLimit, RateLimit-Policy, Retry-After, Location, WWW-Authenticate"
)
MAX_AGE = b"600"


class CorsMiddleware:
    def __init__(self, app: ASGIApp, *, management_origins: tuple[str, ...]) -> None:
        self._app = app
        self._management_origins = frozenset(origin.rstrip("/").lower() for origin in management_origins)

    def _allows(self, path: str, origin: str) -> bool:
        if path.startswith(DATA_PREFIXES):
            return origin != "null"  # a sandboxed or file page has no origin to check a key's domains against
        return origin.rstrip("/").lower() in self._management_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        origin = preflight_method = supplied_id = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"access-control-request-method":
                preflight_method = value
            elif name == b"x-request-id":
                supplied_id = value.decode("latin-1")
        if origin is None:
            await self._app(scope, receive, send)
            return
        allowed = self._allows(scope["path"], origin)
        if scope["method"] == "OPTIONS" and preflight_method is not None:
            # Answered before the auth middleware, which names every other request: name this one too.
            await _answer_preflight(send, origin if allowed else None, request_id_for(supplied_id))
            return
        if not allowed:
            await self._app(scope, receive, send)
            return
        granted = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-expose-headers", EXPOSE_HEADERS),
            (b"vary", b"Origin"),
        ]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *granted]
            await send(message)

        await self._app(scope, receive, send_with_cors)


async def _answer_preflight(send: Send, origin: str | None, request_id: str) -> None:
    """204 granting the request, or 204 without grants (the browser then blocks the real request)."""
    headers = [(b"vary", b"Origin"), (b"content-length", b"0"), (b"x-request-id", request_id.encode())]
    if origin is not None:
        headers += [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-allow-headers", ALLOW_HEADERS),
            (b"access-control-max-age", MAX_AGE),
        ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
