"""One HTTP attempt: sign per Standard Webhooks, connect to the checked address, no redirects.

Signing uses the ``standardwebhooks`` reference library (``Webhook.sign``) rather than our own HMAC,
so what we send is exactly what every receiver's verifier expects. The connection goes to the IP
address the SSRF guard approved, with the original ``Host`` header and TLS server name, so the name
cannot resolve to something else between the check and the request. A response body is read only up
to ``MAX_RESPONSE_BYTES``: a receiver cannot make us buffer a large answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks import Webhook

from reservekit import __version__
from reservekit.webhooks.ssrf import IPAddress, Resolver, UnsafeDestination, resolve_safely

MAX_RESPONSE_BYTES = 4096
USER_AGENT = f"ReserveKit-Webhooks/{__version__}"


@dataclass(frozen=True)
class AttemptResult:
    outcome: str  # succeeded | http_error | timeout | network | refused
    status_code: int | None
    latency_ms: float
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome == "succeeded"


def signed_headers(secret: str, *, webhook_id: str, payload: str, at: datetime) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, payload),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def _pinned(url: str, address: IPAddress) -> tuple[str, str, str]:
    """(url with the IP as host, Host header, TLS server name)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header, host


async def send_once(
    client: httpx.AsyncClient,
    *,
    url: str,
    secret: str,
    webhook_id: str,
    payload: str,
    timeout_seconds: float,
    allow_loopback: bool,
    resolver: Resolver,
) -> AttemptResult:
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 3)

    try:
        addresses = await resolve_safely(url, allow_loopback=allow_loopback, resolver=resolver)
    except UnsafeDestination as exc:
        return AttemptResult("refused", None, elapsed(), str(exc)[:255])
    target, host_header, server_name = _pinned(url, addresses[0])
    headers = signed_headers(secret, webhook_id=webhook_id, payload=payload, at=datetime.now(UTC))
    headers["host"] = host_header
    extensions = {"sni_hostname": server_name} if target.startswith("https") else {}
    try:
        # httpx's timeout bounds each read; the deadline bounds the whole attempt (a slow drip too).
        async with asyncio.timeout(timeout_seconds):
            return await _post(client, target, payload, headers, extensions, timeout_seconds, elapsed)
    except (httpx.TimeoutException, TimeoutError):
        return AttemptResult("timeout", None, elapsed(), f"no response within {timeout_seconds:g}s")
    except httpx.HTTPError as exc:
        return AttemptResult("network", None, elapsed(), (str(exc) or type(exc).__name__)[:255])


async def _post(
    client: httpx.AsyncClient,
    target: str,
    payload: str,
    headers: dict[str, str],
    extensions: dict[str, str],
    timeout_seconds: float,
    elapsed: Callable[[], float],
) -> AttemptResult:
    request = client.build_request(
        "POST",
        target,
        content=payload.encode(),
        headers=headers,
        timeout=timeout_seconds,
        extensions=extensions,
    )
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received >= MAX_RESPONSE_BYTES:
                break  # read no more than a small prefix; the status code is what counts
    finally:
        await response.aclose()
    code = response.status_code
    if 200 <= code < 300:
        return AttemptResult("succeeded", code, elapsed())
    return AttemptResult("http_error", code, elapsed(), f"HTTP {code}")
