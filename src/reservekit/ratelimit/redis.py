"""Redis-backed GCRA limiter: one quota shared by every replica.

Each check is ONE atomic Lua script (EVALSHA via ``register_script``) on one key, so it is safe under
concurrency and on Redis Cluster. The key holds the TAT in integer microseconds and expires when the
bucket is full again, so Redis memory stays bounded by the buckets that are mid-refill.

``now`` is passed in by the caller, never read from Redis ``TIME``: the script stays deterministic
and fake clocks work in tests. Replicas sharing a Redis therefore rely on synchronised clocks (NTP);
a replica whose clock runs behind is slightly stricter, one that runs ahead slightly more lenient.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from reservekit.clock import seconds_to_micros

from .decision import RateDecision
from .errors import RateLimiterUnavailable
from .gcra import emission_interval_us, gcra_step_us

# Mirrors gcra.gcra_step_us. KEYS[1]: bucket. ARGV: now_us, interval_us, limit, cost (integers, exact
# as Lua doubles below 2**53). Returns {allowed (0/1), TAT before this check (max(stored, now))}; the
# decision is then computed in Python from that TAT by the very same function the in-memory limiter uses.
_GCRA_LUA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3]) * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local new_tat = tat + tonumber(ARGV[4]) * interval
if new_tat - now > burst then
  return {0, tat}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, tat}
"""


class RedisRateLimiter:
    """GCRA limiter whose state lives in Redis under ``prefix + bucket``.

    Redis errors (unreachable, timeout, refused command) are raised as ``RateLimiterUnavailable``.
    This sits on every request's path: give ``client`` short socket timeouts and a small retry budget
    (redis-py's default retry policy backs off for seconds before an outage surfaces).
    """

    def __init__(self, client: Redis, *, prefix: str = "reservekit:rl:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_GCRA_LUA)

    async def hit(self, bucket: str, *, limit: int, period: float, now: float, cost: int = 1) -> RateDecision:
        interval = emission_interval_us(limit, period, cost)
        now_us = seconds_to_micros(now)
        try:
            allowed, tat = await self._script(
                keys=[self._prefix + bucket], args=[now_us, interval, limit, cost]
            )
        except RedisError as exc:
            raise RateLimiterUnavailable(f"rate limiter store unavailable: {exc}") from exc
        _, decision = gcra_step_us(int(tat), now_us, limit, interval, cost)
        if decision.allowed is not bool(allowed):  # only a script/math mismatch could cause this
            raise RuntimeError("rate-limit Lua script disagrees with gcra_step_us")
        return decision

    async def peek(
        self, bucket: str, *, limit: int, period: float, now: float, cost: int = 1
    ) -> RateDecision:
        interval = emission_interval_us(limit, period, cost)
        try:
            raw = await self._client.get(self._prefix + bucket)
        except RedisError as exc:
            raise RateLimiterUnavailable(f"rate limiter store unavailable: {exc}") from exc
        tat = None if raw is None else int(raw)
        return gcra_step_us(tat, seconds_to_micros(now), limit, interval, cost)[1]
