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
from reservekit.domain.domains import host_matches, origin_host
from reservekit.keys.tokens import KeyHasher, is_well_formed
from reservekit.ratelimit import InMemoryRateLimiter, RateDecision, RateLimiter, RateLimiterUnavailable

log = structlog.get_logger(__name__)
WINDOW_SECONDS = 60


class AuthResult:
    __slots__ = ("decision", "key", "outcome")

    def __init__(
        self, outcome: Outcome, key: CachedKey | None = None, decision: RateDecision | None = None
    ) -> None:
        self.outcome = outcome
        self.key = key
        self.decision = decision


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

    async def authenticate(
        self,
        *,
        authorization: str | None,
        origin: str | None,
        referer: str | None,
        required_scopes: frozenset[str] | None,
        client_ip: str,
    ) -> AuthResult:
        now = self._clock.timestamp()
        ip_bucket = "ip:" + client_ip
        guard = await self._failure_limiter.peek(
            ip_bucket, limit=self._failure_limit, period=WINDOW_SECONDS, now=now
        )
        if not guard.allowed:
            return AuthResult("rate_limited", decision=guard)
        key, outcome = await self._identify(authorization, now)
        if outcome in GUESSING_OUTCOMES:
            spent = await self._failure_limiter.hit(
                ip_bucket, limit=self._failure_limit, period=WINDOW_SECONDS, now=now
            )
            return AuthResult("rate_limited", decision=spent) if not spent.allowed else AuthResult(outcome)
        if key is None or outcome != "ok":
            return AuthResult(outcome, key)
        if key.domains and not host_matches(origin_host(origin, referer), key.domains):
            return AuthResult("origin_mismatch", key)
        if required_scopes and required_scopes.isdisjoint(key.scopes):
            return AuthResult("scope_denied", key)
        decision = await self._spend_quota(key.account_id, now)
        return AuthResult("ok" if decision.allowed else "rate_limited", key, decision)

    async def _identify(self, authorization: str | None, now: float) -> tuple[CachedKey | None, Outcome]:
        if authorization is None:
            return None, "missing"
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not is_well_formed(token):
            return None, "malformed"
        key_hash = self._hasher.digest(token)
        key = self._view.get(key_hash) or await self._view.resolve(key_hash)
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
            log.warning("rate_limiter_unavailable", error=str(exc))
            return await self._local_limiter.hit(bucket, limit=limit, period=WINDOW_SECONDS, now=now)
