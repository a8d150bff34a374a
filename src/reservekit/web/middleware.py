"""ASGI glue around the authenticator: request id, refusals as problem+json, rate-limit headers.

Written as raw ASGI (no Request object) because it runs on every request: it scans the header list
once and answers refusals itself without entering the framework.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
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
from reservekit.db import is_unavailable
from reservekit.domain.domains import origin_host
from reservekit.metrics import Metrics
from reservekit.ratelimit import InMemoryRateLimiter, rate_limit_header_bytes, rate_limit_headers
from reservekit.redaction import redact
from reservekit.usage.records import UsageRecord
from reservekit.usage.writer import UsageWriter
from reservekit.web.problems import (
    DATABASE_UNAVAILABLE,
    PROBLEM_JSON,
    RETRY_AFTER_SECONDS,
    log_database_unavailable,
    problem_bytes,
)
from reservekit.web.request_guard import nul_parameter
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
        self._public_limiter = InMemoryRateLimiter()  # per-IP budgets of public routes (opt)

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
            if await self._public_refusal(scope, send, opt, ip, request_id, extra):
                return
            await self._app(scope, receive, _with_headers(send, extra, None))
            return
        now = self._clock.timestamp()
        origin = origin_host(headers.get(b"origin"), headers.get(b"referer"))
        try:
            result = await self._authenticator.authenticate(
                authorization=headers.get(b"authorization"),
                origin_host=origin,
                required_scopes=opt.get("scopes"),
                client_ip=ip,
            )
        except Exception as exc:
            # A key not yet in memory needs the database; if it is away the answer is a 503 (problems.py),
            # and that answered request still gets its usage row.
            if not is_unavailable(exc):
                raise
            draft = _UsageDraft(now, request_id, None, ip, origin, scope, "unavailable")
            self._usage.record(draft.finish(503, started))
            # Answered here, not re-raised: the app-level handler would send it without this
            # request's X-Request-Id (the headers above are only added to what passes through us).
            log_database_unavailable(exc)
            retry_after = (b"retry-after", str(RETRY_AFTER_SECONDS).encode())
            await _send_problem(send, DATABASE_UNAVAILABLE.problem(request_id), 503, [*extra, retry_after])
            return
        if result.per_ip and result.decision is not None:
            extra.append((b"retry-after", str(max(1, math.ceil(result.decision.retry_after))).encode()))
        elif result.decision is not None:
            extra += rate_limit_header_bytes(result.decision, now=now)
        self._metrics.observe(result.outcome, per_ip=result.per_ip, quota_checked=result.decision is not None)
        key = result.key
        row = _UsageDraft(now, request_id, key, ip, origin, scope, result.outcome)
        # Every usage row is recorded (and spooled) before its response starts: a client that got an
        # answer has a row even if the process is killed right after.
        if result.outcome != "ok":
            self._usage.record(row.finish(REFUSALS[result.outcome].status, started))
            await self._refuse(
                send,
                result.outcome,
                request_id,
                extra,
                token_given=_bearer_given(headers.get(b"authorization")),
            )
            return
        state["auth"] = key
        bad_parameter = _nul_parameter(scope)
        if bad_parameter is not None:
            self._usage.record(row.finish(400, started))
            await _send_problem(send, _nul_problem(bad_parameter, request_id), 400, extra)
            return
        recorded = [False]

        def on_start(status: int) -> None:
            recorded[0] = True
            self._usage.record(row.finish(status, started))

        try:
            await self._app(scope, receive, _with_headers(send, extra, on_start))
        finally:
            if not recorded[0]:  # the app failed before answering
                self._usage.record(row.finish(500, started))

    async def _public_refusal(
        self,
        scope: Scope,
        send: Send,
        opt: dict[str, Any],
        ip: str,
        request_id: str,
        extra: list[tuple[bytes, bytes]],
    ) -> bool:
        """Refuse a public request over its route's per-IP budget, or with NUL in its path or query.

        Runs before the framework reads the body, so an abusive client is limited before its body is
        decoded (``POST /v1/leaks``).
        """
        per_minute = opt.get("per_ip_per_minute")
        if per_minute:
            now = self._clock.timestamp()
            bucket = f"{scope.get('path_template') or scope['path']}|{ip}"
            decision = await self._public_limiter.hit(bucket, limit=per_minute, period=60, now=now)
            if not decision.allowed:
                refusal = REFUSALS["rate_limited"]
                body = problem_bytes(refusal.status, refusal.title, refusal.code, request_id)
                headers = [
                    *extra,
                    *((n.lower().encode(), v.encode()) for n, v in rate_limit_headers(decision, now=now)),
                ]
                await _send_problem(send, body, refusal.status, headers)
                return True
        bad_parameter = _nul_parameter(scope)
        if bad_parameter is not None:
            await _send_problem(send, _nul_problem(bad_parameter, request_id), 400, extra)
            return True
        return False

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


def _nul_parameter(scope: Scope) -> str | None:
    name = nul_parameter(scope["path"], scope.get("query_string", b""))
    if name == "path":
        # Name the path parameter (``service_id``…) when the router has parsed it.
        params = scope.get("path_params") or {}
        name = next((k for k, v in params.items() if isinstance(v, str) and "\x00" in v), name)
    return name


def _nul_problem(field: str, request_id: str) -> bytes:
    return problem_bytes(
        400,
        "Invalid request",
        "invalid_request",
        request_id,
        detail=f"{field} must not contain a NUL character",
        field=field,
    )


async def _send_problem(send: Send, body: bytes, status: int, extra: list[tuple[bytes, bytes]]) -> int:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ],
    }
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)
    return status


def _bearer_given(authorization: str | None) -> bool:
    return authorization is not None and authorization.strip()[:7].lower() == "bearer "


def _with_headers(
    send: Send, extra: list[tuple[bytes, bytes]], on_start: Callable[[int], None] | None
) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
            if on_start is not None:
                on_start(message["status"])
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
        # The usage log keeps only what the client sent that cannot be a key (redaction.py).
        self.origin = redact(origin)[:255] if origin else None
        self.method = str(scope.get("method", "?"))[:16]
        self.route = redact(str(scope.get("path_template") or scope["path"]))[:255]
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
