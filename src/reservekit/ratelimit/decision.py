"""The outcome of one rate-limit check, and the response headers that describe it."""

from __future__ import annotations

import math

import msgspec


class RateDecision(msgspec.Struct, frozen=True, gc=False):
    """What a limiter answered for one check.

    ``remaining``: further unit-cost requests that would be allowed right now, after this one.
    ``reset_after``: seconds until the quota is fully back.
    ``retry_after``: seconds until this request would be allowed; 0 when it was allowed.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float


def rate_limit_headers(
    decision: RateDecision, *, now: float, window_seconds: int = 60
) -> list[tuple[str, str]]:
    """Response headers for ``decision``: ``X-RateLimit-*``, the IETF draft
    (draft-ietf-httpapi-ratelimit-headers-09) ``RateLimit-Policy`` / ``RateLimit``, and ``Retry-After``
    on a refusal. ``X-RateLimit-Reset`` is the Unix second at which the quota is fully back."""
    limit = decision.limit
    remaining = decision.remaining
    headers = [
        ("X-RateLimit-Limit", str(limit)),
        ("X-RateLimit-Remaining", str(remaining)),
        ("X-RateLimit-Reset", str(math.ceil(now + decision.reset_after))),
        ("RateLimit-Policy", f'"default";q={limit};w={window_seconds}'),
        ("RateLimit", f'"default";r={remaining};t={math.ceil(decision.reset_after)}'),
    ]
    if not decision.allowed:
        headers.append(("Retry-After", str(max(1, math.ceil(decision.retry_after)))))
    return headers


def rate_limit_header_bytes(
    decision: RateDecision, *, now: float, window_seconds: int = 60
) -> list[tuple[bytes, bytes]]:
    """``rate_limit_headers`` as ASGI header pairs (lower-case names, bytes), formatted straight to
    bytes: the auth middleware adds them to every answered request."""
    limit = decision.limit
    remaining = decision.remaining
    headers = [
        (b"x-ratelimit-limit", b"%d" % limit),
        (b"x-ratelimit-remaining", b"%d" % remaining),
        (b"x-ratelimit-reset", b"%d" % math.ceil(now + decision.reset_after)),
        (b"ratelimit-policy", b'"default";q=%d;w=%d' % (limit, window_seconds)),
        (b"ratelimit", b'"default";r=%d;t=%d' % (remaining, math.ceil(decision.reset_after))),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", b"%d" % max(1, math.ceil(decision.retry_after))))
    return headers
