"""The Redis circuit breaker: after a few failures requests stop waiting on Redis; a background probe
closes the circuit when Redis answers again."""

from __future__ import annotations

import asyncio
import time

import pytest

from reservekit.ratelimit import InMemoryRateLimiter, RateDecision, RateLimiterUnavailable
from reservekit.ratelimit.breaker import CircuitBreakerLimiter


class HungLimiter:
    """Answers like Redis would; while ``hung``, waits ``timeout`` and fails like a socket timeout."""

    def __init__(self, timeout: float = 0.05) -> None:
        self.hung = False
        self.timeout = timeout
        self.calls = 0
        self._real = InMemoryRateLimiter()

    async def hit(self, bucket: str, *, limit: int, period: float, now: float, cost: int = 1) -> RateDecision:
        self.calls += 1
        if self.hung:
            await asyncio.sleep(self.timeout)
            raise RateLimiterUnavailable("timeout")
        return await self._real.hit(bucket, limit=limit, period=period, now=now, cost=cost)

    async def peek(
        self, bucket: str, *, limit: int, period: float, now: float, cost: int = 1
    ) -> RateDecision:
        self.calls += 1
        if self.hung:
            await asyncio.sleep(self.timeout)
            raise RateLimiterUnavailable("timeout")
        return await self._real.peek(bucket, limit=limit, period=period, now=now, cost=cost)


async def check(breaker: CircuitBreakerLimiter) -> tuple[bool, float]:
    started = time.perf_counter()
    try:
        await breaker.hit("acct", limit=100, period=60, now=time.time())
    except RateLimiterUnavailable:
        return False, time.perf_counter() - started
    return True, time.perf_counter() - started


async def test_the_circuit_opens_after_three_failures_and_then_fails_fast() -> None:
    inner = HungLimiter(timeout=0.05)
    breaker = CircuitBreakerLimiter(inner, failure_threshold=3, probe_interval=0.05)
    assert (await check(breaker))[0]
    inner.hung = True
    slow = [await check(breaker) for _ in range(3)]
    assert [ok for ok, _ in slow] == [False, False, False]
    assert all(elapsed >= 0.04 for _, elapsed in slow)
    assert breaker.is_open
    calls = inner.calls
    fast = [await check(breaker) for _ in range(50)]
    assert all(not ok and elapsed < 0.01 for ok, elapsed in fast)
    assert inner.calls - calls <= 2  # only the background probe reached the hung store
    await breaker.close()


async def test_a_probe_closes_the_circuit_when_the_store_is_back() -> None:
    inner = HungLimiter(timeout=0.01)
    breaker = CircuitBreakerLimiter(inner, failure_threshold=2, probe_interval=0.02)
    inner.hung = True
    for _ in range(2):
        await check(breaker)
    assert breaker.is_open
    inner.hung = False
    for _ in range(50):
        await asyncio.sleep(0.01)
        if not breaker.is_open:
            break
    assert not breaker.is_open
    assert (await check(breaker))[0]


async def test_a_success_resets_the_failure_count() -> None:
    inner = HungLimiter(timeout=0.0)
    breaker = CircuitBreakerLimiter(inner, failure_threshold=3, probe_interval=10)
    for _ in range(5):
        inner.hung = True
        await check(breaker)
        await check(breaker)
        inner.hung = False
        assert (await check(breaker))[0]
    assert not breaker.is_open


def test_the_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CircuitBreakerLimiter(HungLimiter(), failure_threshold=0)
