"""ASGI glue around the authenticator: request id, refusals as problem+json, rate-limit headers.

Written as raw ASGI (no Request object) because it runs on every request: it scans the header list
once and answers refusals itself without entering the framework.
"""

from __future__ import annotations

import math
import re
import secrets
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

from reservekit.auth.authenticator import Authenticator
from reservekit.auth.client_ip import Network, client_ip
from reservekit.auth.outcomes import REFUSALS
from reservekit.clock import Clock
from reservekit.ratelimit import rate_limit_headers
from reservekit.web.problems import PROBLEM_JSON, problem_bytes

_WANTED = {b"authorization", b"origin", b"referer", b"x-forwarded-for", b"x-request-id", b"user-agent"}
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CHALLENGE = b'Bearer realm="reservekit"'
_CHALLENGE_TOKEN = b'Bearer realm="reservekit", error="invalid_token"'


class AuthMiddleware:
    def __init__(
        self, app: ASGIApp, *, authenticator: Authenticator, clock: Clock, trusted: tuple[Network, ...]
    ) -> None:
        self._app = app
        self._authenticator = authenticator
        self._clock = clock
        self._trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        headers: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name in _WANTED:
                headers[name] = value.decode("latin-1")
        supplied = headers.get(b"x-request-id")
        request_id = (
            supplied if supplied and _SAFE_REQUEST_ID.match(supplied) else "req_" + secrets.token_hex(8)
        )
        client = scope.get("client")
        peer = client[0] if client else None
        ip = client_ip(peer, headers.get(b"x-forwarded-for"), self._trusted)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_ip"] = ip
        state["user_agent"] = headers.get(b"user-agent")
        structlog.contextvars.bind_contextvars(request_id=request_id)
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        opt = scope["route_handler"].opt
        if not opt.get("public"):
            result = await self._authenticator.authenticate(
                authorization=headers.get(b"authorization"),
                origin=headers.get(b"origin"),
                referer=headers.get(b"referer"),
                required_scopes=opt.get("scopes"),
                client_ip=ip,
            )
            if result.per_ip and result.decision is not None:
                retry = max(1, math.ceil(result.decision.retry_after))
                extra.append((b"retry-after", str(retry).encode()))
            elif result.decision is not None:
                now = self._clock.timestamp()
                extra.extend(
                    (n.lower().encode(), v.encode()) for n, v in rate_limit_headers(result.decision, now=now)
                )
            if result.outcome != "ok":
                await self._refuse(
                    send,
                    result.outcome,
                    request_id,
                    extra,
                    token_given=_bearer_given(headers.get(b"authorization")),
                )
                return
            state["auth"] = result.key
        await self._app(scope, receive, _with_headers(send, extra))

    @staticmethod
    async def _refuse(
        send: Send, outcome: str, request_id: str, extra: list[tuple[bytes, bytes]], *, token_given: bool
    ) -> None:
        refusal = REFUSALS[outcome]  # type: ignore[index]
        body = problem_bytes(refusal.status, refusal.title, refusal.code, request_id)
        headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        if refusal.status == 401:
            headers.append((b"www-authenticate", _CHALLENGE_TOKEN if token_given else _CHALLENGE))
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": headers,
        }
        await send(start)
        end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
        await send(end)


def _bearer_given(authorization: str | None) -> bool:
    return authorization is not None and authorization.strip()[:7].lower() == "bearer "


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return wrapped
