"""What the sync and async clients share: building requests, retry decisions, decoding answers."""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import msgspec

from reservekit_client import __version__
from reservekit_client._calls import Call
from reservekit_client.errors import ServiceUnavailable, error_from_response, retry_after_of
from reservekit_client.models import KeyChange

T = TypeVar("T")
_encoder = msgspec.json.Encoder()
_UNSAFE = frozenset({"POST", "PATCH"})


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``attempts`` tries. Waits grow from ``backoff`` seconds, doubling, with full jitter, capped
    at ``max_backoff``; a ``Retry-After`` is honoured, and a 429 asking for longer than ``max_backoff``
    is raised at once. Retried: connection errors and ``statuses``. POST and PATCH carry one
    ``Idempotency-Key`` across all tries.

    The authority honours ``Idempotency-Key`` (a replay never writes again), so by default a write is
    retried like a read. With ``retry_ambiguous_writes=False`` (for a server that does not honour it) a
    write is retried only when it cannot have been applied: no connection made, or 429/503."""

    attempts: int = 3
    backoff: float = 0.2
    max_backoff: float = 5.0
    statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 502, 503, 504}))
    retry_ambiguous_writes: bool = True

    def delay(
        self,
        attempt: int,
        response: httpx.Response | None,
        *,
        error: httpx.TransportError | None = None,
        write: bool = False,
    ) -> float | None:
        """Seconds to wait before try ``attempt + 1``, or None to stop."""
        if attempt >= self.attempts:
            return None
        ambiguous_ok = not write or self.retry_ambiguous_writes
        if error is not None and not ambiguous_ok and not isinstance(error, _NOT_SENT):
            return None
        if response is not None:
            if response.status_code not in self.statuses:
                return None
            if response.status_code not in _NOTHING_WRITTEN and not ambiguous_ok:
                return None
            asked = retry_after_of(response)
            if asked is not None:
                return asked if asked <= self.max_backoff else None
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not secrecy


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
_NOTHING_WRITTEN = frozenset({429, 503})
NO_RETRY = RetryPolicy(attempts=1)


def client_headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"reservekit-client/{__version__}", "Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def is_write(call: Call[Any]) -> bool:
    return call.write and call.method in _UNSAFE


def request_args(call: Call[Any], idempotency_key: str | None) -> dict[str, Any]:
    headers = dict(call.headers)
    if is_write(call):
        headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
    args: dict[str, Any] = {
        "method": call.method,
        "url": call.path,
        "params": call.params,
        "headers": headers,
    }
    if call.body is not None:
        args["content"] = _encoder.encode(call.body)
        headers["Content-Type"] = "application/json"
    return args


def decode(call: Call[T], response: httpx.Response) -> T:
    if response.status_code >= 400:
        raise error_from_response(response)
    if call.returns is type(None):
        return None
    return msgspec.json.decode(response.content, type=call.returns)


def unreachable(exc: httpx.TransportError) -> ServiceUnavailable:
    return ServiceUnavailable(f"the authority could not be reached: {exc}", code="unreachable")


class Position(msgspec.Struct, kw_only=True):
    """The feed has been read up to ``position`` (nothing this reader may see in between)."""

    position: int


FeedItem = KeyChange | Position


def feed_item(event: str, data: str) -> FeedItem:
    if event == "position":
        return msgspec.json.decode(data, type=Position)
    return msgspec.json.decode(data, type=KeyChange)


def sse_params(after: int | None) -> Mapping[str, Any]:
    return {"after": after} if after is not None else {}
