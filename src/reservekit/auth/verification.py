"""``POST /v1/keys/verify``: another service asks the authority about a key its caller presented.

The answer comes from ``Authenticator.decide``, the very function this app's own middleware runs, so a
key verified here gets the same SPEC §4 outcome it would get as ``Authorization`` on this API. The
secret is never echoed, logged or stored: only the verified key's id appears in the answer and the
usage log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.auth.authenticator import Authenticator, AuthResult
from reservekit.auth.key_view import CachedKey, KeyView
from reservekit.auth.outcomes import REFUSALS
from reservekit.background import WakeUp
from reservekit.clock import Clock
from reservekit.usage.records import UsageRecord
from reservekit.usage.writer import UsageWriter

VALID_CODE = "valid"
VALID_TITLE = "API key is valid"
MAX_COST = 1000
VERIFY_ROUTE = "/v1/keys/verify"
VERIFY_METHOD = "VERIFY"


@dataclass(frozen=True)
class KeyAuthority:
    """What the verify route and the change feed use, built once by ``create_app`` (never the runtime):
    the one decision, the key view's position, the usage log, the log itself and its wake-ups."""

    authenticator: Authenticator
    key_view: KeyView
    usage: UsageWriter
    engine: AsyncEngine
    clock: Clock
    wakeup: WakeUp
    poll_interval: float
    max_body_bytes: int


class VerifyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``key`` absent or null means the end user presented no key at all (row 1)."""

    key: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    required_scopes: (
        Annotated[
            list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]], msgspec.Meta(max_length=20)
        ]
        | None
    ) = None
    origin: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    referer: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    client_ip: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    cost: Annotated[int, msgspec.Meta(ge=1, le=MAX_COST)] = 1


class RateLimitOut(msgspec.Struct, kw_only=True):
    """The verified key's account quota after this check; ``reset``: Unix second it is fully back."""

    limit: int
    remaining: int
    reset: int


class VerifyAnswer(msgspec.Struct, kw_only=True):
    """``status`` is what this API itself would have answered; ``position`` is the lifecycle-log
    position the answer reflects, so a cache can tell an answer from before a change it has seen."""

    valid: bool
    code: str
    title: str
    status: int
    key_id: str | None
    account_id: str | None
    scopes: list[str]
    domains: list[str]
    expires_at: datetime | None
    ratelimit: RateLimitOut | None
    retry_after: int | None
    position: int


def verify_answer(result: AuthResult, *, now: float, position: int) -> VerifyAnswer:
    key: CachedKey | None = result.key
    if result.outcome == "ok":
        code, title, status = VALID_CODE, VALID_TITLE, 200
    else:
        refusal = REFUSALS[result.outcome]
        code, title, status = refusal.code, refusal.title, refusal.status
    decision = result.decision
    quota = (
        RateLimitOut(
            limit=decision.limit,
            remaining=decision.remaining,
            reset=math.ceil(now + decision.reset_after),
        )
        if decision is not None and not result.per_ip
        else None
    )
    retry_after = (
        max(1, math.ceil(decision.retry_after))
        if decision is not None and result.outcome == "rate_limited"
        else None
    )
    return VerifyAnswer(
        valid=result.outcome == "ok",
        code=code,
        title=title,
        status=status,
        key_id=key.key_id if key else None,
        account_id=key.account_id if key else None,
        scopes=sorted(key.scopes) if key else [],
        domains=list(key.domains) if key else [],
        expires_at=datetime.fromtimestamp(key.expires_at, UTC) if key and key.expires_at else None,
        ratelimit=quota,
        retry_after=retry_after,
        position=position,
    )


def verified_usage_row(
    result: AuthResult,
    answer: VerifyAnswer,
    *,
    now: float,
    request_id: str,
    client_ip: str,
    origin_host: str | None,
    verifier_key_id: str,
) -> UsageRecord:
    """The verified key's use, as the detectors read it: its key, its end user's IP and origin, its
    outcome; ``method`` ``VERIFY`` and the route naming the verifying service's key mark who asked.
    The verifying request itself gets its own row (the service's key) from the middleware, with the
    same ``request_id``."""
    key = result.key
    return UsageRecord(
        occurred_at_us=int(now * 1_000_000),
        request_id=request_id,
        key_id=answer.key_id,
        account_id=answer.account_id,
        client_ip=client_ip,
        origin=origin_host[:255] if origin_host else None,
        method=VERIFY_METHOD,
        route=f"{VERIFY_ROUTE} by {verifier_key_id}",
        status=answer.status,
        outcome=result.outcome,
        detail="rotated_out" if result.outcome == "expired" and key is not None and key.rotated else None,
        latency_us=0,
    )
