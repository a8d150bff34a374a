"""``POST /v1/keys/verify`` (keys:verify): the HTTP side of ``reservekit.auth.verification``.

A raw ASGI handler rather than a Litestar handler with injected dependencies and body parsing: this
route is on another service's request path, and Litestar's per-request kwargs machinery costs more
than the whole decision (see docs/benchmarks.md). It still sits behind the auth middleware (which
checks the service key and its scope) and answers bad input with the same problem+json.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import msgspec
from litestar import asgi
from litestar.types import Receive, Scope, Send

from reservekit.auth.key_view import CachedKey
from reservekit.auth.verification import (
    KeyAuthority,
    VerifyAnswer,
    VerifyBody,
    verified_usage_row,
    verify_answer,
)
from reservekit.domain.domains import origin_host
from reservekit.domain.scopes import KEYS_VERIFY
from reservekit.web.access import requires
from reservekit.web.problems import PROBLEM_JSON, problem_bytes

_decoder = msgspec.json.Decoder(VerifyBody)
_encoder = msgspec.json.Encoder()
_JSON = [(b"content-type", b"application/json")]


class _BadInput(Exception):
    def __init__(self, status: int, title: str, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.code, self.detail, self.field = status, title, code, detail, field


# A question, not a write: an Idempotency-Key is ignored, so an old answer is never replayed.
@asgi(
    "/v1/keys/verify",
    opt={**requires(KEYS_VERIFY), "idempotency": False},
    copy_scope=False,
    include_in_schema=False,
)
async def verify_key(scope: Scope, receive: Receive, send: Send) -> None:
    """An operator's service key may verify any account's keys; any other only its own account's
    (another account's key is answered exactly like an unknown key)."""
    state: dict[str, Any] = scope["state"]
    authority: KeyAuthority = scope["app"].state.key_authority
    try:
        if scope.get("method") != "POST":
            raise _BadInput(405, "Method Not Allowed", "method_not_allowed", "use POST")
        data = await _read_body(receive, authority.max_body_bytes, _is_json(scope))
        answer = await _verify(authority, state, data)
    except _BadInput as bad:
        body = problem_bytes(
            bad.status, bad.title, bad.code, state.get("request_id"), detail=bad.detail, field=bad.field
        )
        await _send(send, bad.status, body, [(b"content-type", PROBLEM_JSON.encode())])
        return
    await _send(send, 200, _encoder.encode(answer), _JSON)


async def _verify(authority: KeyAuthority, state: dict[str, Any], data: VerifyBody) -> VerifyAnswer:
    caller: CachedKey = state["auth"]
    client_ip = _client_ip(data.client_ip) if data.client_ip is not None else str(state["client_ip"])
    host = origin_host(data.origin, data.referer)
    result = await authority.authenticator.decide(
        token=data.key,
        origin_host=host,
        required_scopes=frozenset(data.required_scopes) if data.required_scopes else None,
        client_ip=client_ip,
        cost=data.cost,
        within_account=None if caller.operator else caller.account_id,
    )
    now = authority.clock.timestamp()
    answer = verify_answer(result, now=now, position=authority.key_view.position)
    authority.usage.record(
        verified_usage_row(
            result,
            answer,
            now=now,
            request_id=str(state.get("request_id") or ""),
            client_ip=client_ip,
            origin_host=host,
            verifier_key_id=caller.key_id,
        )
    )
    return answer


def _client_ip(raw: str) -> str:
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise _BadInput(
            422, "Invalid input", "invalid_input", "client_ip must be an IPv4 or IPv6 address", "client_ip"
        ) from None


def _is_json(scope: Scope) -> bool:
    """The same rule as every other route (``web/strict.py``): a body is JSON only when sent as JSON."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type = value.split(b";")[0].strip().lower()
            return media_type == b"application/json" or media_type.endswith(b"+json")
    return False


async def _read_body(receive: Receive, limit: int, is_json: bool) -> VerifyBody:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _BadInput(400, "Invalid request", "invalid_request", "the request ended early")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BadInput(413, "Request Entity Too Large", "request_too_large", f"at most {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    if body and not is_json:
        raise _BadInput(
            415, "Unsupported Media Type", "unsupported_media_type", "send the body as application/json"
        )
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        # Parsed, but not the schema (a wrong type, an unknown field): 422 like every route (errors.md).
        raise _BadInput(422, "Invalid input", "invalid_input", str(exc), _field_of(str(exc))) from None
    except msgspec.DecodeError:
        raise _BadInput(400, "Invalid request", "invalid_request", "the body is not valid JSON") from None


def _field_of(message: str) -> str | None:
    """msgspec says ``… - at `$.cost``` or ``Object contains unknown field `extra```."""
    for marker in ("at `$.", "field `"):
        start = message.find(marker)
        if start >= 0:
            rest = message[start + len(marker) :]
            return rest[: rest.find("`")].split("[")[0].split(".")[0] or None
    return None


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
