"""``Idempotency-Key`` on every POST: a retried request never writes twice and never shows a secret twice.

Runs after authentication, so a key's records belong to its account (an unauthenticated POST, such as
a leak report, to its client IP). The same key with the same request within 24 hours answers the first
answer again with ``Idempotent-Replayed: true`` (``secret`` withheld); with a different request, 422;
while the first is still running, 409. Records live in the database, shared by every replica.
"""

from __future__ import annotations

import hashlib
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, ReceiveMessage, Scope, Send
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit import idempotency
from reservekit.clock import Clock, to_micros
from reservekit.web.problems import PROBLEM_JSON, problem_bytes

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, engine: AsyncEngine, clock: Clock) -> None:
        self._app = app
        self._engine = engine
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope["method"] != "POST"
            or scope["route_handler"].opt.get("idempotency") is False
        ):
            # A POST that only answers a question (POST /v1/keys/verify) must never replay an old answer.
            await self._app(scope, receive, send)
            return
        raw = next((value for name, value in scope["headers"] if name == HEADER), None)
        if raw is None:
            await self._app(scope, receive, send)
            return
        state: dict[str, Any] = scope.get("state", {})
        request_id = state.get("request_id")
        key = raw.decode("latin-1")
        if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
            await _problem(
                send,
                400,
                "Invalid request",
                "invalid_request",
                request_id,
                detail="Idempotency-Key must be 1 to 255 printable ASCII characters",
                field="Idempotency-Key",
            )
            return
        body, more = await _read_body(receive)
        caller = state.get("auth")
        owner = f"acct:{caller.account_id}" if caller is not None else f"ip:{state.get('client_ip')}"
        fingerprint = _fingerprint(scope, body)
        found = await idempotency.claim(self._engine, owner, key, fingerprint, to_micros(self._clock.now()))
        if found is not None:
            await self._answer_again(send, found, fingerprint, request_id)
            return
        await self._run_and_keep(scope, _replaying(more, receive), send, owner, key)

    async def _answer_again(
        self, send: Send, found: idempotency.Stored, fingerprint: str, request_id: str | None
    ) -> None:
        if found.fingerprint != fingerprint:
            await _problem(
                send,
                422,
                "Idempotency-Key reused",
                "idempotency_key_reused",
                request_id,
                detail="this Idempotency-Key was used with a different request; nothing was done",
                field="Idempotency-Key",
            )
            return
        if found.status is None:
            await _problem(
                send,
                409,
                "Request in progress",
                "idempotency_key_in_progress",
                request_id,
                detail="a request with this Idempotency-Key is still running; retry later",
                field="Idempotency-Key",
            )
            return
        headers = [(b"idempotent-replayed", b"true"), (b"cache-control", b"no-store")]
        if found.content_type:
            headers.append((b"content-type", found.content_type.encode()))
        if found.location:
            headers.append((b"location", found.location.encode()))
        await send({"type": "http.response.start", "status": found.status, "headers": headers})
        await send({"type": "http.response.body", "body": found.body or b"", "more_body": False})

    async def _run_and_keep(self, scope: Scope, receive: Receive, send: Send, owner: str, key: str) -> None:
        status = 500
        headers: dict[bytes, bytes] = {}
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.update((name.lower(), value) for name, value in message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self._app(scope, receive, keep)
        finally:
            if status >= 500:  # nothing was decided: let the retry run afresh
                await idempotency.release(self._engine, owner, key)
            else:
                content_type = headers.get(b"content-type")
                location = headers.get(b"location")
                await idempotency.complete(
                    self._engine,
                    owner,
                    key,
                    status,
                    content_type.decode("latin-1") if content_type else None,
                    location.decode("latin-1") if location else None,
                    b"".join(chunks),
                )


def _fingerprint(scope: HTTPScope, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(f"{scope['method']} {scope['path']}?".encode())
    digest.update(scope.get("query_string", b""))
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


async def _read_body(receive: Receive) -> tuple[bytes, list[ReceiveMessage]]:
    """The whole body, and the messages read, to hand to the application unchanged."""
    messages: list[ReceiveMessage] = []
    parts: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts), messages


def _replaying(messages: list[ReceiveMessage], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> ReceiveMessage:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _problem(
    send: Send, status: int, title: str, code: str, request_id: str | None, **extra: Any
) -> None:
    body = problem_bytes(status, title, code, request_id, **extra)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
