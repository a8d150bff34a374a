"""``rate_spike``: a minute's request count against the key's own baseline.

The statistic: per key, requests are counted per event-time minute. When a minute closes, its count
is folded into an exponentially weighted moving average (EWMA) of the key's previous per-minute
counts, ``ewma <- ewma + alpha * (count - ewma)``, seeded with the first minute's count; idle minutes
in between count as zero (``ewma <- ewma * (1 - alpha) ** idle``). The current minute's running
count is compared with the EWMA of the minutes before it: the rule fires once per minute, when the
count reaches ``max(rate_spike_min_requests, ceil(rate_spike_factor * ewma))``, provided the key has
at least ``rate_spike_min_history_minutes`` minutes of history. The EWMA is kept in fixed point
(thousandths) so it is exactly the same after a rebuild on either database.
"""

from __future__ import annotations

import math

from reservekit.clock import MINUTE_US
from reservekit.detectors.config import DetectorThresholds
from reservekit.detectors.rules import RATE_SPIKE, Hit, iso, key_subject
from reservekit.detectors.state import KeyTrack
from reservekit.usage.records import UsageRecord

STATISTIC = "count in the current minute vs EWMA of the key's previous per-minute counts"


def advance_minute(track: KeyTrack, minute: int, alpha: float) -> None:
    """Close the minutes before ``minute``; rows for an earlier minute count into the current one."""
    if minute <= track.minute:
        return
    count_milli = track.minute_count * 1000
    if track.history_minutes == 0:
        ewma = float(count_milli)
    else:
        ewma = track.ewma_milli + alpha * (count_milli - track.ewma_milli)
    idle = minute - track.minute - 1
    if idle > 0:
        ewma *= (1.0 - alpha) ** idle
    track.ewma_milli = round(ewma)
    track.history_minutes += 1 + idle
    track.minute = minute
    track.minute_count = 0


def threshold(track: KeyTrack, limits: DetectorThresholds) -> int:
    scaled = math.ceil(limits.rate_spike_factor * track.ewma_milli / 1000)
    return max(limits.rate_spike_min_requests, scaled)


def rate_spike(track: KeyTrack, limits: DetectorThresholds, record: UsageRecord) -> Hit | None:
    assert record.key_id is not None
    advance_minute(track, record.occurred_at_us // MINUTE_US, limits.rate_spike_alpha)
    track.minute_count += 1
    if track.history_minutes < limits.rate_spike_min_history_minutes:
        return None
    needed = threshold(track, limits)
    if track.minute_count != needed:
        return None
    return Hit(
        rule=RATE_SPIKE,
        subject=key_subject(record.key_id),
        at_us=record.occurred_at_us,
        account_id=record.account_id,
        key_id=record.key_id,
        client_ip=record.client_ip,
        origin=record.origin,
        evidence={
            "statistic": STATISTIC,
            "count": track.minute_count,
            "baseline_ewma": track.ewma_milli / 1000,
            "factor": limits.rate_spike_factor,
            "threshold": needed,
            "minute": iso(track.minute * MINUTE_US),
        },
    )
