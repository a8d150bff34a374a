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


async def test_defaults_open_on_the_third_failure_and_count_what_they_do() -> None:
    from structlog.testing import capture_logs

    inner = HungLimiter(timeout=0.0)
    breaker = CircuitBreakerLimiter(inner)
    inner.hung = True
    with capture_logs() as logs:
        for expected_open in (False, False, True):
            with pytest.raises(RateLimiterUnavailable):
                await breaker.peek("acct", limit=5, period=60, now=0)
            assert breaker.is_open is expected_open
        with pytest.raises(RateLimiterUnavailable, match="circuit open"):
            await breaker.peek("acct", limit=5, period=60, now=0)
        with pytest.raises(RateLimiterUnavailable, match="circuit open"):
            await breaker.hit("acct", limit=5, period=60, now=0)
    assert (breaker.opened_count, breaker.short_circuited) == (1, 2)
    assert [entry["event"] for entry in logs] == ["rate_limiter_circuit_open"]
    assert logs[0]["failures"] == 3
    await breaker.close()
    assert not breaker.is_open


async def test_peek_answers_through_a_closed_circuit_and_resets_failures() -> None:
    inner = HungLimiter(timeout=0.0)
    breaker = CircuitBreakerLimiter(inner, failure_threshold=2, probe_interval=10)
    await breaker.hit("acct", limit=5, period=60, now=100)
    inner.hung = True
    with pytest.raises(RateLimiterUnavailable):
        await breaker.peek("acct", limit=5, period=60, now=100)
    inner.hung = False
    decision = await breaker.peek("acct", limit=5, period=60, now=100)
    assert (decision.allowed, decision.remaining) == (True, 3)
    inner.hung = True
    with pytest.raises(RateLimiterUnavailable):
        await breaker.peek("acct", limit=5, period=60, now=100)
    assert not breaker.is_open  # the success in between reset the count


async def test_the_default_probe_peeks_the_probe_bucket_and_closing_logs() -> None:
    from structlog.testing import capture_logs

    class Recording(HungLimiter):
        def __init__(self) -> None:
            super().__init__(timeout=0.0)
            self.peeked: list[tuple[str, int, float]] = []

        async def peek(
            self, bucket: str, *, limit: int, period: float, now: float, cost: int = 1
        ) -> RateDecision:
            self.peeked.append((bucket, limit, period))
            return await super().peek(bucket, limit=limit, period=period, now=now, cost=cost)

    inner = Recording()
    breaker = CircuitBreakerLimiter(inner, failure_threshold=1, probe_interval=0.01)
    inner.hung = True
    with pytest.raises(RateLimiterUnavailable):
        await breaker.hit("acct", limit=5, period=60, now=0)
    await asyncio.sleep(0.05)
    assert breaker.is_open  # probes keep failing while hung
    with capture_logs() as logs:
        inner.hung = False
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not breaker.is_open:
                break
    assert not breaker.is_open
    assert inner.peeked[-1] == ("circuit-probe", 1, 1)
    assert [entry["event"] for entry in logs] == ["rate_limiter_circuit_closed"]
    inner.hung = True
    with pytest.raises(RateLimiterUnavailable):  # a closed circuit counts afresh from zero
        await breaker.hit("acct", limit=5, period=60, now=0)
    assert breaker.is_open
    await breaker.close()
