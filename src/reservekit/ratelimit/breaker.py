"""A circuit breaker around the shared (Redis) limiter, so a hung Redis costs nothing per request.

Without it, every request waits the Redis socket timeout (0.25 s) before falling back to local limits
(issue 10: median 258 ms instead of 3 ms with Redis stopped by SIGSTOP). After ``failure_threshold``
consecutive failures the circuit *opens*: checks raise ``RateLimiterUnavailable`` at once (the
authenticator then uses its in-process limiter) and one background task probes Redis every
``probe_interval`` seconds. The first successful probe *closes* the circuit again. Requests never
probe; only the background task waits on a hung Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from .decision import RateDecision
from .errors import RateLimiterUnavailable
from .protocol import RateLimiter

log = structlog.get_logger(__name__)
PROBE_BUCKET = "circuit-probe"


class CircuitBreakerLimiter:
    def __init__(
        self,
        inner: RateLimiter,
        *,
        failure_threshold: int = 3,
        probe_interval: float = 1.0,
        probe: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self._inner = inner
        self._threshold = failure_threshold
        self._probe_interval = probe_interval
        self._probe = probe or self._default_probe
        self._failures = 0
        self._probe_task: asyncio.Task[None] | None = None
        self.opened_count = 0
        self.short_circuited = 0

    @property
    def is_open(self) -> bool:
        return self._probe_task is not None

    async def hit(self, bucket: str, *, limit: int, period: float, now: float, cost: int = 1) -> RateDecision:
        self._refuse_if_open()
        try:
            decision = await self._inner.hit(bucket, limit=limit, period=period, now=now, cost=cost)
        except RateLimiterUnavailable:
            self._failed()
            raise
        self._failures = 0
        return decision

    async def peek(
        self, bucket: str, *, limit: int, period: float, now: float, cost: int = 1
    ) -> RateDecision:
        self._refuse_if_open()
        try:
            decision = await self._inner.peek(bucket, limit=limit, period=period, now=now, cost=cost)
        except RateLimiterUnavailable:
            self._failed()
            raise
        self._failures = 0
        return decision

    async def close(self) -> None:
        task, self._probe_task = self._probe_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _refuse_if_open(self) -> None:
        if self._probe_task is not None:
            self.short_circuited += 1
            raise RateLimiterUnavailable(
                "rate limiter store unavailable: circuit open, probing in background"
            )

    def _failed(self) -> None:
        self._failures += 1
        if self._failures >= self._threshold and self._probe_task is None:
            self.opened_count += 1
            log.warning(
                "rate_limiter_circuit_open", failures=self._failures, probe_every=self._probe_interval
            )
            self._probe_task = asyncio.create_task(self._probe_until_back(), name="reservekit-redis-probe")

    async def _probe_until_back(self) -> None:
        while True:
            await asyncio.sleep(self._probe_interval)
            try:
                await self._probe()
            except RateLimiterUnavailable:
                continue
            break
        self._failures = 0
        self._probe_task = None
        log.warning("rate_limiter_circuit_closed")

    async def _default_probe(self) -> object:
        return await self._inner.peek(PROBE_BUCKET, limit=1, period=1, now=time.time())
