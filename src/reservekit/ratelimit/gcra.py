"""Pure GCRA (generic cell rate algorithm) math, shared by every backend.

Semantics: each bucket holds ``limit`` requests and refills continuously at one request every
``period / limit`` seconds; it starts full, so ``limit`` requests may be made back to back, and a
spent quota is fully back ``period`` seconds later. The whole state is one number, the theoretical
arrival time (TAT): the instant the bucket is full again. A TAT in the past means "full", so a bucket's
state can be dropped once its TAT has passed.

The arithmetic runs on integer microseconds: results are exact (no float drift at Unix-time
magnitudes) and bit-for-bit identical to the Redis Lua script, whose doubles hold integers exactly
below 2**53, i.e. any microsecond timestamp before the year 2255. The time per request is rounded up
to a whole microsecond, so ``limit`` requests never refill faster than ``period``.
"""

from __future__ import annotations

from reservekit.clock import SECOND_US, seconds_to_micros

from .decision import RateDecision

MICROS = SECOND_US


def emission_interval_us(limit: int, period: float, cost: int = 1) -> int:
    """Microseconds the quota needs to refill one request; validates the arguments."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    period_us = seconds_to_micros(period)
    if period_us < 1:
        raise ValueError(f"period must be positive, got {period}")
    if not 1 <= cost <= limit:
        raise ValueError(f"cost must be between 1 and limit ({limit}), got {cost}")
    return -(-period_us // limit)


def gcra_step_us(
    tat_us: int | None, now_us: int, limit: int, interval_us: int, cost: int = 1
) -> tuple[int | None, RateDecision]:
    """One check on integer microseconds: (new TAT, or None when refused; decision)."""
    burst = limit * interval_us
    tat = now_us if tat_us is None or tat_us < now_us else tat_us
    new_tat = tat + cost * interval_us
    if new_tat - now_us > burst:
        return None, RateDecision(
            allowed=False,
            limit=limit,
            remaining=max(0, (burst - (tat - now_us)) // interval_us),
            reset_after=(tat - now_us) / MICROS,
            retry_after=(new_tat - burst - now_us) / MICROS,
        )
    return new_tat, RateDecision(
        allowed=True,
        limit=limit,
        remaining=(burst - (new_tat - now_us)) // interval_us,
        reset_after=(new_tat - now_us) / MICROS,
        retry_after=0.0,
    )


def gcra_step(
    tat: float | None, now: float, limit: int, period: float, cost: int = 1
) -> tuple[float | None, RateDecision]:
    """One check in Unix seconds: returns the new TAT (None when refused: state is unchanged)
    and the decision. ``limit`` requests per ``period`` seconds, the whole quota usable as a burst."""
    interval = emission_interval_us(limit, period, cost)
    tat_us = None if tat is None else seconds_to_micros(tat)
    new_tat, decision = gcra_step_us(tat_us, seconds_to_micros(now), limit, interval, cost)
    return (None if new_tat is None else new_tat / MICROS), decision
