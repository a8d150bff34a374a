"""Authenticating one request, checks in SPEC §4's order; the first failure answers.

Everything on the path of a known key is in memory: the format check, one HMAC, a dictionary lookup,
and the rate limiter (in-process, or one Redis round trip when replicas share quotas).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet

import structlog

from reservekit.auth.decision import bearer_token, judge_key
from reservekit.auth.key_view import CachedKey, KeyView
from reservekit.auth.outcomes import GUESSING_OUTCOMES, Outcome
from reservekit.clock import Clock
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
        # The embedded default's limiter answers without I/O: called directly, no coroutine per request.
        self._in_memory = account_limiter if isinstance(account_limiter, InMemoryRateLimiter) else None
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
        """A request to this app: the key comes from its ``Authorization`` header; ``origin_host`` is
        the host of ``Origin`` (else ``Referer``), computed once by the middleware."""
        return await self.decide(
            token=bearer_token(authorization),
            origin_host=origin_host,
            required_scopes=required_scopes,
            client_ip=client_ip,
        )

    async def decide(
        self,
        *,
        token: str | None,
        origin_host: str | None,
        required_scopes: AbstractSet[str] | None,
        client_ip: str,
        cost: int = 1,
        within_account: str | None = None,
    ) -> AuthResult:
        """SPEC §4 for one presented key (None: no key at all). The one decision the auth middleware
        and ``POST /v1/keys/verify`` both run; ``cost`` requests of the account's quota are spent.

        ``within_account``: a key of any other account is answered exactly like an unknown key
        (row 3, counted against the client IP's guessing budget), so it reveals nothing."""
        now = self._clock.timestamp()
        ip_bucket = "ip:" + client_ip
        # The in-memory limiters are called without a coroutine: nothing on a known key's path awaits
        # unless the account limiter is shared (Redis).
        budget = self._failure_limiter.peek_now(
            ip_bucket, limit=self._failure_limit, period=WINDOW_SECONDS, now=now
        )
        # An IP out of failure budget may still use keys this replica already knows; it only loses
        # the database lookups that key guessing needs (so guessing costs nothing but a 429).
        key, outcome = self._identify_in_memory(token)
        if outcome == "invalid" and token is not None and budget.allowed:
            key = await self._view.resolve(self._hasher.digest(token))
            outcome = "ok" if key is not None else "invalid"
        if key is not None and within_account is not None and key.account_id != within_account:
            key, outcome = None, "invalid"
        if outcome in GUESSING_OUTCOMES:
            if budget.allowed:
                budget = self._failure_limiter.hit_now(
                    ip_bucket, limit=self._failure_limit, period=WINDOW_SECONDS, now=now
                )
            if not budget.allowed:
                return AuthResult("rate_limited", decision=budget, per_ip=True)
            return AuthResult(outcome)
        assert key is not None
        outcome = judge_key(key, now=now, origin_host=origin_host, required_scopes=required_scopes)
        if outcome != "ok":
            return AuthResult(outcome, key)
        decision = await self._spend_quota(key.account_id, now, cost)
        return AuthResult("ok" if decision.allowed else "rate_limited", key, decision)

    def _identify_in_memory(self, token: str | None) -> tuple[CachedKey | None, Outcome]:
        """Rows 1-3 from memory; "invalid" may still be a key this replica has not seen yet."""
        if token is None:
            return None, "missing"
        if not is_well_formed(token):
            return None, "malformed"
        key = self._view.get(self._hasher.digest(token))
        if key is None:
            return None, "invalid"
        return key, "ok"

    async def _spend_quota(self, account_id: str, now: float, cost: int) -> RateDecision:
        plan = self._view.plan_of(account_id) or await self._view.resolve_plan(account_id)
        limit = self._plans.get(plan or "", self._default_limit)
        bucket = "acct:" + account_id
        if cost > limit:
            # More than the whole quota can never be allowed; say so without touching the bucket.
            return RateDecision(False, limit, 0, float(WINDOW_SECONDS), float(WINDOW_SECONDS))
        if self._in_memory is not None:
            return self._in_memory.hit_now(bucket, limit=limit, period=WINDOW_SECONDS, now=now, cost=cost)
        try:
            return await self._account_limiter.hit(
                bucket, limit=limit, period=WINDOW_SECONDS, now=now, cost=cost
            )
        except RateLimiterUnavailable as exc:
            # Shared limits degrade to per-replica limits rather than refusing every request.
            if now - self._last_outage_log >= OUTAGE_LOG_INTERVAL:
                self._last_outage_log = now
                log.warning("rate_limiter_unavailable", error=str(exc), fallback="in-process limits")
            return await self._local_limiter.hit(
                bucket, limit=limit, period=WINDOW_SECONDS, now=now, cost=cost
            )
