"""GCRA rate limiting: boundaries with a fake clock, memory bounds, response headers."""

from __future__ import annotations

import pytest

from reservekit.ratelimit import (
    InMemoryRateLimiter,
    RateDecision,
    RateLimiter,
    emission_interval_us,
    gcra_step,
    rate_limit_header_bytes,
    rate_limit_headers,
)

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


async def exhaust(
    rl: RateLimiter, bucket: str = "acct", limit: int = 60, now: float = NOW, count: int | None = None
) -> None:
    for _ in range(limit if count is None else count):
        assert (await rl.hit(bucket, limit=limit, period=60, now=now)).allowed


async def test_whole_quota_at_one_instant_then_denied_for_one_interval() -> None:
    rl = InMemoryRateLimiter()
    for k in range(1, 61):
        d = await rl.hit("acct", limit=60, period=60, now=NOW)
        assert (d.allowed, d.limit, d.remaining, d.retry_after) == (True, 60, 60 - k, 0.0)
        assert d.reset_after == pytest.approx(k * 60 / 60, abs=1e-9)
    d = await rl.hit("acct", limit=60, period=60, now=NOW)
    assert (d.allowed, d.remaining) == (False, 0)
    assert d.retry_after == pytest.approx(1.0, abs=1e-9)
    assert d.reset_after == pytest.approx(60.0, abs=1e-9)


async def test_allowed_again_exactly_one_interval_later_not_before() -> None:
    rl = InMemoryRateLimiter()
    await exhaust(rl)
    early = await rl.hit("acct", limit=60, period=60, now=NOW + 0.999)
    assert not early.allowed
    assert early.retry_after == pytest.approx(0.001, abs=1e-9)
    on_time = await rl.hit("acct", limit=60, period=60, now=NOW + 1.0)
    assert (on_time.allowed, on_time.remaining) == (True, 0)
    assert not (await rl.hit("acct", limit=60, period=60, now=NOW + 1.0)).allowed


async def test_remaining_and_reset_exact_with_fractional_interval_and_clock() -> None:
    rl, now = InMemoryRateLimiter(), NOW + 0.123457  # 600/min: one request every 0.1 s
    for k in range(1, 601):
        d = await rl.hit("acct", limit=600, period=60, now=now)
        assert (d.allowed, d.remaining) == (True, 600 - k)
        assert d.reset_after == pytest.approx(k * 60 / 600, abs=1e-9)
    assert not (await rl.hit("acct", limit=600, period=60, now=now)).allowed


async def test_quota_fully_back_after_one_period() -> None:
    rl = InMemoryRateLimiter()
    await exhaust(rl)
    partial = await rl.peek("acct", limit=60, period=60, now=NOW + 59.5)
    assert partial.remaining == 58
    await exhaust(rl, now=NOW + 60)
    assert not (await rl.hit("acct", limit=60, period=60, now=NOW + 60)).allowed


async def test_limit_of_one() -> None:
    rl = InMemoryRateLimiter()
    first = await rl.hit("acct", limit=1, period=60, now=NOW)
    assert (first.allowed, first.remaining, first.reset_after) == (True, 0, 60.0)
    second = await rl.hit("acct", limit=1, period=60, now=NOW)
    assert (second.allowed, second.retry_after) == (False, 60.0)
    assert not (await rl.hit("acct", limit=1, period=60, now=NOW + 59.999)).allowed
    assert (await rl.hit("acct", limit=1, period=60, now=NOW + 60)).allowed


async def test_cost_greater_than_one() -> None:
    rl = InMemoryRateLimiter()  # limit 10/min: one request every 6 s
    a = await rl.hit("acct", limit=10, period=60, now=NOW, cost=4)
    b = await rl.hit("acct", limit=10, period=60, now=NOW, cost=4)
    assert (a.remaining, a.reset_after, b.remaining, b.reset_after) == (6, 24.0, 2, 48.0)
    c = await rl.hit("acct", limit=10, period=60, now=NOW, cost=4)
    assert (c.allowed, c.remaining, c.retry_after, c.reset_after) == (False, 2, 12.0, 48.0)
    d = await rl.hit("acct", limit=10, period=60, now=NOW, cost=2)
    assert (d.allowed, d.remaining, d.reset_after) == (True, 0, 60.0)


async def test_denied_hits_do_not_consume() -> None:
    rl = InMemoryRateLimiter()
    await exhaust(rl)
    for _ in range(100):
        d = await rl.hit("acct", limit=60, period=60, now=NOW + 0.5)
        assert (d.allowed, d.retry_after) == (False, 0.5)
    assert (await rl.hit("acct", limit=60, period=60, now=NOW + 1.0)).allowed


async def test_peek_does_not_consume_and_matches_the_next_hit() -> None:
    rl = InMemoryRateLimiter()
    for _ in range(5):
        assert await rl.peek("acct", limit=60, period=60, now=NOW) == RateDecision(True, 60, 59, 1.0, 0.0)
    assert await rl.hit("acct", limit=60, period=60, now=NOW) == RateDecision(True, 60, 59, 1.0, 0.0)
    await exhaust(rl, count=59)
    denied = await rl.peek("acct", limit=60, period=60, now=NOW)
    assert denied == await rl.hit("acct", limit=60, period=60, now=NOW)
    assert (await rl.peek("acct", limit=60, period=60, now=NOW + 1)).allowed
    assert (await rl.hit("acct", limit=60, period=60, now=NOW + 1)).allowed


async def test_buckets_are_independent() -> None:
    rl = InMemoryRateLimiter()
    await exhaust(rl, "a", limit=1)
    assert not (await rl.hit("a", limit=1, period=60, now=NOW)).allowed
    assert (await rl.hit("b", limit=1, period=60, now=NOW)).allowed


async def test_memory_cap_evicts_least_recently_written() -> None:
    rl = InMemoryRateLimiter(max_buckets=2)
    for bucket in ("a", "b", "c"):
        await rl.hit(bucket, limit=1, period=60, now=NOW)
    assert len(rl) == 2
    assert (await rl.hit("a", limit=1, period=60, now=NOW)).allowed  # evicted, so full again
    assert not (await rl.hit("c", limit=1, period=60, now=NOW)).allowed  # kept
    assert len(rl) == 2


async def test_buckets_full_again_are_dropped_lazily() -> None:
    rl = InMemoryRateLimiter()
    for bucket in ("a", "b", "c"):
        await rl.hit(bucket, limit=1, period=60, now=NOW)
    await rl.hit("d", limit=1, period=60, now=NOW + 60)
    assert len(rl) == 2  # a and b were full again: dropped by the write of d


def test_invalid_arguments_are_rejected() -> None:
    for limit, period, cost in [(0, 60, 1), (10, 0, 1), (10, 60, 0), (10, 60, 11)]:
        with pytest.raises(ValueError, match="must be"):
            emission_interval_us(limit, period, cost)


def test_interval_rounds_up_to_whole_microseconds() -> None:
    assert emission_interval_us(7, 60) == 8_571_429  # 60 s / 7, never refilling faster than 60 s


def test_gcra_step_returns_new_tat_or_none_when_denied() -> None:
    tat, d = gcra_step(None, NOW, limit=2, period=60)
    assert (tat, d.remaining) == (NOW + 30, 1)
    tat, d = gcra_step(tat, NOW, limit=2, period=60)
    assert (tat, d.remaining) == (NOW + 60, 0)
    assert gcra_step(tat, NOW, limit=2, period=60) == (None, RateDecision(False, 2, 0, 60.0, 30.0))


def test_headers_for_an_allowed_decision() -> None:
    headers = rate_limit_headers(RateDecision(True, 60, 59, 1.0, 0.0), now=NOW + 0.5)
    assert headers == [
        ("X-RateLimit-Limit", "60"),
        ("X-RateLimit-Remaining", "59"),
        ("X-RateLimit-Reset", "1767225602"),
        ("RateLimit-Policy", '"default";q=60;w=60'),
        ("RateLimit", '"default";r=59;t=1'),
    ]


def test_headers_for_a_denied_decision() -> None:
    headers = rate_limit_headers(RateDecision(False, 600, 0, 59.95, 0.05), now=NOW, window_seconds=60)
    assert headers == [
        ("X-RateLimit-Limit", "600"),
        ("X-RateLimit-Remaining", "0"),
        ("X-RateLimit-Reset", "1767225660"),
        ("RateLimit-Policy", '"default";q=600;w=60'),
        ("RateLimit", '"default";r=0;t=60'),
        ("Retry-After", "1"),
    ]
    assert rate_limit_headers(RateDecision(False, 10, 2, 48.0, 12.0), now=NOW)[-1] == ("Retry-After", "12")


@pytest.mark.parametrize(
    "decision",
    [
        RateDecision(True, 60, 59, 1.0, 0.0),
        RateDecision(True, 1_000_000_000, 999_999_998, 0.00012, 0.0),
        RateDecision(False, 600, 0, 59.95, 0.05),
        RateDecision(False, 5, 0, 60.0, 12.3),
    ],
)
def test_header_bytes_are_the_same_headers_as_asgi_pairs(decision: RateDecision) -> None:
    expected = [(n.lower().encode(), v.encode()) for n, v in rate_limit_headers(decision, now=NOW + 0.5)]
    assert rate_limit_header_bytes(decision, now=NOW + 0.5) == expected
