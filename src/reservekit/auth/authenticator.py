"""Authenticating one request, checks in SPEC §4's order; the first failure answers.

Everything on the path of a known key is in memory: the format check, one HMAC, a dictionary lookup,
and the rate limiter (in-process, or one Redis round trip when replicas share quotas).
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from reservekit.auth.key_view import CachedKey, KeyView
from reservekit.auth.outcomes import GUESSING_OUTCOMES, Outcome
from reservekit.clock import Clock
from reservekit.domain.domains import host_matches
from reservekit.keys.tokens import KeyHasher, is_well_formed
from reservekit.ratelimit import InMemoryRateLimiter, RateDecision, RateLimiter, RateLimiterUnavailable

log = structlog.get_logger(__name__)
WINDOW_SECONDS = 60
OUTAGE_LOG_INTERVAL = 10.0


class AuthResult:
    """``per_ip`` marks a refusal from the client IP's failure budget rather than the account quota."""

    __slots__ = ("decision", "key", "outcome", "per_ip")

    def __init__(
        self,
        outcome: Outcome,
        key: CachedKey | None = None,
        decision: RateDecision | None = None,
        *,
        per_ip: bool = False,
    ) -> None:
        self.outcome = outcome
        self.key = key
        self.decision = decision
        self.per_ip = per_ip


class Authenticator:
    def __init__(
        self,
        view: KeyView,
        hasher: KeyHasher,
        clock: Clock,
        *,
        plans: Mapping[str, int],
        account_limiter: RateLimiter,
        failures_per_ip_per_minute: int,
    ) -> None:
        self._view = view
        self._hasher = hasher
        self._clock = clock
        self._plans = plans
        self._default_limit = plans.get("free", min(plans.values()))
        self._account_limiter = account_limiter
        self._local_limiter = InMemoryRateLimiter()
        self._failure_limiter = InMemoryRateLimiter()
        self._failure_limit = failures_per_ip_per_minute
        self._last_outage_log = float("-inf")

    async def authenticate(
        self,
        *,
        authorization: str | None,
        origin_host: str | None,
        required_scopes: frozenset[str] | None,
        client_ip: str,
    ) -> AuthResult:
        """``origin_host``: the host of ``Origin`` (else ``Referer``), computed once by the middleware."""
        now = self._clock.timestamp()
        ip_bucket = "ip:" + client_ip
        budget = await self._failure_limiter.peek(
            ip_bucket, limit=self._failure_limit, period=WINDOW_SECONDS, now=now
        )
        # An IP out of failure budget may still use keys this replica already knows; it only loses
        # the database lookups that key guessing needs (so guessing costs nothing but a 429).
        key, outcome = await self._identify(authorization, now, may_look_up=budget.allowed)
        if outcome in GUESSING_OUTCOMES:
            if budget.allowed:
                budget = await self._failure_limiter.hit(
                    ip_bucket, limit=self._failure_limit, period=WINDOW_SECONDS, now=now
                )
            if not budget.allowed:
                return AuthResult("rate_limited", decision=budget, per_ip=True)
            return AuthResult(outcome)
        if key is None or outcome != "ok":
            return AuthResult(outcome, key)
        if key.domains and not host_matches(origin_host, key.domains):
            return AuthResult("origin_mismatch", key)
        if required_scopes and required_scopes.isdisjoint(key.scopes):
            return AuthResult("scope_denied", key)
        decision = await self._spend_quota(key.account_id, now)
        return AuthResult("ok" if decision.allowed else "rate_limited", key, decision)

    async def _identify(
        self, authorization: str | None, now: float, *, may_look_up: bool
    ) -> tuple[CachedKey | None, Outcome]:
        if authorization is None:
            return None, "missing"
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not is_well_formed(token):
            return None, "malformed"
        key_hash = self._hasher.digest(token)
        key = self._view.get(key_hash)
        if key is None and may_look_up:
            key = await self._view.resolve(key_hash)
        if key is None:
            return None, "invalid"
        if key.revoked:
            return key, "revoked"
        if key.expires_at is not None and now >= key.expires_at:
            return key, "expired"
        return key, "ok"

    async def _spend_quota(self, account_id: str, now: float) -> RateDecision:
        plan = self._view.plan_of(account_id) or await self._view.resolve_plan(account_id)
        limit = self._plans.get(plan or "", self._default_limit)
        bucket = "acct:" + account_id
        try:
            return await self._account_limiter.hit(bucket, limit=limit, period=WINDOW_SECONDS, now=now)
        except RateLimiterUnavailable as exc:
            # Shared limits degrade to per-replica limits rather than refusing every request.
            if now - self._last_outage_log >= OUTAGE_LOG_INTERVAL:
                self._last_outage_log = now
                log.warning("rate_limiter_unavailable", error=str(exc), fallback="in-process limits")
            return await self._local_limiter.hit(bucket, limit=limit, period=WINDOW_SECONDS, now=now)
