"""RedisRateLimiter against a real Redis at 127.0.0.1:6379: same decisions as the in-memory limiter,
one quota shared by replicas, bounded keys, and a clear error when Redis is down."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from reservekit.ratelimit import (
    InMemoryRateLimiter,
    RateDecision,
    RateLimiter,
    RateLimiterUnavailable,
    RedisRateLimiter,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    """A live client; skips when Redis is down locally, fails when CI=true (Redis is required there)."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except RedisError as exc:
        await client.aclose()
        reason = f"Redis not reachable at 127.0.0.1:6379 ({exc}); start it to run the Redis rate-limit tests"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (required when CI=true)")
        pytest.skip(reason)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis_client: Redis) -> AsyncIterator[str]:
    """A key prefix unique to the test; its keys are deleted afterwards."""
    unique = f"reservekit:test:rl:{uuid.uuid4().hex}:"
    yield unique
    keys = [key async for key in redis_client.scan_iter(match=f"{unique}*")]
    if keys:
        await redis_client.delete(*keys)


async def run(rl: RateLimiter, steps: list[tuple[str, str, float, int, int]]) -> list[RateDecision]:
    out = []
    for op, bucket, now, limit, cost in steps:
        check = rl.hit if op == "hit" else rl.peek
        out.append(await check(bucket, limit=limit, period=60, now=now, cost=cost))
    return out


async def test_same_decisions_as_in_memory_limiter(redis_client: Redis, prefix: str) -> None:
    steps = [("hit", "a", NOW, 60, 1)] * 61
    steps += [("peek", "a", NOW + 0.999, 60, 1), ("hit", "a", NOW + 0.999, 60, 1)]
    steps += [("hit", "a", NOW + 1.0, 60, 1), ("hit", "a", NOW + 1.0, 60, 1), ("hit", "a", NOW + 61, 60, 1)]
    steps += [("hit", "one", NOW + 0.5, 1, 1)] * 2 + [("hit", "one", NOW + 60.5, 1, 1)]
    rng, now = random.Random(20260101), NOW + 0.123457
    for _ in range(400):
        now += rng.choice([0.0, 0.0, 0.001, 0.05, 0.1, 0.7, 3.0])
        bucket, limit = rng.choice([("b", 7), ("c", 600), ("d", 10)])
        steps.append((rng.choice(["hit", "hit", "peek"]), bucket, now, limit, rng.randint(1, 3)))
    expected = await run(InMemoryRateLimiter(), steps)
    actual = await run(RedisRateLimiter(redis_client, prefix=prefix), steps)
    assert actual == expected
    assert [d.allowed for d in expected[:61]] == [True] * 60 + [False]
    assert {d.allowed for d in expected[66:]} == {True, False}


async def test_two_replicas_share_one_quota(redis_client: Redis, prefix: str) -> None:
    other_client = Redis.from_url(REDIS_URL)
    try:
        first = RedisRateLimiter(redis_client, prefix=prefix)
        second = RedisRateLimiter(other_client, prefix=prefix)
        decisions = [await first.hit("acct", limit=10, period=60, now=NOW) for _ in range(6)]
        decisions += [await second.hit("acct", limit=10, period=60, now=NOW) for _ in range(4)]
        assert [(d.allowed, d.remaining) for d in decisions] == [(True, 9 - i) for i in range(10)]
        assert not (await first.hit("acct", limit=10, period=60, now=NOW)).allowed
        assert not (await second.hit("acct", limit=10, period=60, now=NOW)).allowed
    finally:
        await other_client.aclose()


async def test_concurrent_hits_from_two_replicas_never_exceed_the_quota(
    redis_client: Redis, prefix: str
) -> None:
    other_client = Redis.from_url(REDIS_URL)
    try:
        limiters = [RedisRateLimiter(c, prefix=prefix) for c in (redis_client, other_client)]
        checks = [limiters[i % 2].hit("acct", limit=10, period=60, now=NOW) for i in range(30)]
        decisions = await asyncio.gather(*checks)
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))
    finally:
        await other_client.aclose()


async def test_keys_expire_when_the_bucket_is_full_again(redis_client: Redis, prefix: str) -> None:
    rl = RedisRateLimiter(redis_client, prefix=prefix)
    await rl.hit("acct", limit=60, period=60, now=NOW)
    assert 0 < await redis_client.pttl(f"{prefix}acct") <= 1_000
    for _ in range(9):
        await rl.hit("acct", limit=60, period=60, now=NOW)
    assert 9_000 < await redis_client.pttl(f"{prefix}acct") <= 10_000
    assert int(await redis_client.get(f"{prefix}acct")) == round((NOW + 10) * 1_000_000)


async def test_unreachable_redis_raises_rate_limiter_unavailable() -> None:
    # No retries: redis-py's default retry policy would spend seconds backing off before giving up.
    client = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    rl = RedisRateLimiter(client)
    try:
        with pytest.raises(RateLimiterUnavailable) as hit_error:
            await rl.hit("acct", limit=60, period=60, now=NOW)
        assert isinstance(hit_error.value.__cause__, RedisError)
        with pytest.raises(RateLimiterUnavailable):
            await rl.peek("acct", limit=60, period=60, now=NOW)
    finally:
        await client.aclose()
