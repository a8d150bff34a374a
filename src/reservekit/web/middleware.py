"""ASGI glue around the authenticator: request id, refusals as problem+json, rate-limit headers.

Written as raw ASGI (no Request object) because it runs on every request: it scans the header list
once and answers refusals itself without entering the framework.
"""

from __future__ import annotations

import math
import time
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
from reservekit.auth.key_view import CachedKey
from reservekit.auth.outcomes import REFUSALS
from reservekit.clock import SECOND_US, Clock
from reservekit.domain.domains import origin_host
from reservekit.metrics import Metrics
from reservekit.ratelimit import rate_limit_headers
from reservekit.usage.records import UsageRecord
from reservekit.usage.writer import UsageWriter
from reservekit.web.problems import PROBLEM_JSON, problem_bytes
from reservekit.web.request_ids import request_id_for

_WANTED = {b"authorization", b"origin", b"referer", b"x-forwarded-for", b"x-request-id", b"user-agent"}
_CHALLENGE = b'Bearer realm="reservekit"'
_CHALLENGE_TOKEN = b'Bearer realm="reservekit", error="invalid_token"'


class AuthMiddleware:
    """Request id, authentication (SPEC §4), rate-limit headers, and one usage row per API request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        usage: UsageWriter,
        metrics: Metrics,
        clock: Clock,
        trusted: tuple[Network, ...],
    ) -> None:
        self._app = app
        self._authenticator = authenticator
        self._usage = usage
        self._metrics = metrics
        self._clock = clock
        self._trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        headers: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name in _WANTED:
                headers[name] = value.decode("latin-1")
        request_id = request_id_for(headers.get(b"x-request-id"))
        client = scope.get("client")
        ip = client_ip(client[0] if client else None, headers.get(b"x-forwarded-for"), self._trusted)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_ip"] = ip
        state["user_agent"] = headers.get(b"user-agent")
        structlog.contextvars.bind_contextvars(request_id=request_id)
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        opt = scope["route_handler"].opt
        if opt.get("public"):
            await self._app(scope, receive, _with_headers(send, extra, None))
            return
        now = self._clock.timestamp()
        origin = origin_host(headers.get(b"origin"), headers.get(b"referer"))
        result = await self._authenticator.authenticate(
            authorization=headers.get(b"authorization"),
            origin_host=origin,
            required_scopes=opt.get("scopes"),
            client_ip=ip,
        )
        if result.per_ip and result.decision is not None:
            extra.append((b"retry-after", str(max(1, math.ceil(result.decision.retry_after))).encode()))
        elif result.decision is not None:
            extra.extend(
                (n.lower().encode(), v.encode()) for n, v in rate_limit_headers(result.decision, now=now)
            )
        self._metrics.observe(result.outcome, per_ip=result.per_ip, quota_checked=result.decision is not None)
        key = result.key
        row = _UsageDraft(now, request_id, key, ip, origin, scope, result.outcome)
        if result.outcome != "ok":
            status = await self._refuse(
                send,
                result.outcome,
                request_id,
                extra,
                token_given=_bearer_given(headers.get(b"authorization")),
            )
            self._usage.record(row.finish(status, started))
            return
        state["auth"] = key
        response_status = [500]
        try:
            await self._app(scope, receive, _with_headers(send, extra, response_status))
        finally:
            self._usage.record(row.finish(response_status[0], started))

    @staticmethod
    async def _refuse(
        send: Send, outcome: str, request_id: str, extra: list[tuple[bytes, bytes]], *, token_given: bool
    ) -> int:
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
        return refusal.status


def _bearer_given(authorization: str | None) -> bool:
    return authorization is not None and authorization.strip()[:7].lower() == "bearer "


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]], status: list[int] | None) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
            if status is not None:
                status[0] = message["status"]
        await send(message)

    return wrapped


class _UsageDraft:
    """What is known of a request before its response; ``finish`` adds status and latency."""

    __slots__ = ("ip", "key", "method", "now", "origin", "outcome", "request_id", "route")

    def __init__(
        self,
        now: float,
        request_id: str,
        key: CachedKey | None,
        ip: str,
        origin: str | None,
        scope: Scope,
        outcome: str,
    ) -> None:
        self.now = now
        self.request_id = request_id
        self.key = key
        self.ip = ip
        self.origin = origin[:255] if origin else None
        self.method = str(scope.get("method", "?"))
        self.route = str(scope.get("path_template") or scope["path"])[:255]
        self.outcome = outcome

    def finish(self, status: int, started: float) -> UsageRecord:
        key = self.key
        rotated_out = self.outcome == "expired" and key is not None and key.rotated
        return UsageRecord(
            occurred_at_us=int(self.now * SECOND_US),
            request_id=self.request_id,
            key_id=key.key_id if key else None,
            account_id=key.account_id if key else None,
            client_ip=self.ip,
            origin=self.origin,
            method=self.method,
            route=self.route,
            status=status,
            outcome=self.outcome,
            detail="rotated_out" if rotated_out else None,
            latency_us=int((time.perf_counter() - started) * SECOND_US),
        )
