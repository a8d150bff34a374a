"""Per-account rate limiting: GCRA, the whole per-period quota usable as a burst.

Each bucket allows ``limit`` requests back to back and refills continuously at one request every
``period / limit`` seconds. ``InMemoryRateLimiter`` serves one process; ``RedisRateLimiter`` shares
the quota across replicas. Time is always passed in (``now``, Unix seconds) by the caller.
"""

from __future__ import annotations

from .decision import RateDecision, rate_limit_header_bytes, rate_limit_headers
from .errors import RateLimiterUnavailable
from .gcra import emission_interval_us, gcra_step, gcra_step_us
from .memory import InMemoryRateLimiter
from .protocol import RateLimiter
from .redis import RedisRateLimiter

__all__ = [
    "InMemoryRateLimiter",
    "RateDecision",
    "RateLimiter",
    "RateLimiterUnavailable",
    "RedisRateLimiter",
    "emission_interval_us",
    "gcra_step",
    "gcra_step_us",
    "rate_limit_header_bytes",
    "rate_limit_headers",
]
