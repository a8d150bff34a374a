"""In-process GCRA limiter: correct for a single replica (the embedded default)."""

from __future__ import annotations

from collections import OrderedDict

from reservekit.clock import seconds_to_micros

from .decision import RateDecision
from .gcra import emission_interval_us, gcra_step_us


class InMemoryRateLimiter:
    """GCRA buckets in a bounded, insertion-ordered map of bucket -> TAT (integer microseconds).

    Memory stays bounded: every write moves its bucket to the end and drops up to two buckets from
    the front whose TAT has passed (a bucket that is full again is the same as no bucket). If more
    than ``max_buckets`` buckets are mid-refill at once, the least recently written one is dropped
    anyway, which resets it to full: the cap wins over exactness. O(1) per check; no awaits, so a
    check is atomic on its event loop and needs no lock.
    """

    def __init__(self, *, max_buckets: int = 100_000) -> None:
        if max_buckets < 1:
            raise ValueError(f"max_buckets must be at least 1, got {max_buckets}")
        self._max_buckets = max_buckets
        self._tats: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        """Number of buckets currently held."""
        return len(self._tats)

    async def hit(self, bucket: str, *, limit: int, period: float, now: float, cost: int = 1) -> RateDecision:
        return self._check(bucket, limit, period, now, cost, consume=True)

    def hit_now(self, bucket: str, *, limit: int, period: float, now: float, cost: int = 1) -> RateDecision:
        """``hit`` without a coroutine: for callers on the hot path that know they hold this limiter."""
        return self._check(bucket, limit, period, now, cost, consume=True)

    def peek_now(self, bucket: str, *, limit: int, period: float, now: float, cost: int = 1) -> RateDecision:
        return self._check(bucket, limit, period, now, cost, consume=False)

    async def peek(
        self, bucket: str, *, limit: int, period: float, now: float, cost: int = 1
    ) -> RateDecision:
        return self._check(bucket, limit, period, now, cost, consume=False)

    def _check(
        self, bucket: str, limit: int, period: float, now: float, cost: int, *, consume: bool
    ) -> RateDecision:
        interval = emission_interval_us(limit, period, cost)
        now_us = seconds_to_micros(now)
        tats = self._tats
        new_tat, decision = gcra_step_us(tats.get(bucket), now_us, limit, interval, cost)
        if consume and new_tat is not None:
            tats[bucket] = new_tat
            tats.move_to_end(bucket)
            self._evict(now_us)
        return decision

    def _evict(self, now_us: int) -> None:
        tats = self._tats
        for _ in range(2):  # the bucket just written is last and not expired, so the map never empties
            oldest, tat = next(iter(tats.items()))
            if tat > now_us:
                break
            del tats[oldest]
        if len(tats) > self._max_buckets:
            tats.popitem(last=False)
