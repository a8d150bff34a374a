"""The interface every rate-limit backend implements."""

from __future__ import annotations

from typing import Protocol

from .decision import RateDecision


class RateLimiter(Protocol):
    """``limit`` requests per ``period`` seconds per ``bucket``, the whole quota usable as a burst.

    ``now`` is Unix seconds from the caller's injectable clock, never read inside the limiter.
    """

    async def hit(self, bucket: str, *, limit: int, period: float, now: float, cost: int = 1) -> RateDecision:
        """Check and, when allowed, consume ``cost`` requests. A refusal consumes nothing."""
        ...

    async def peek(
        self, bucket: str, *, limit: int, period: float, now: float, cost: int = 1
    ) -> RateDecision:
        """The answer ``hit`` would give now, without consuming anything."""
        ...
