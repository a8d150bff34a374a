"""Every detector threshold and window in one frozen settings object.

Defaults are chosen so that a normal workload (one or a few servers calling steadily with a correctly
configured key) raises nothing, while the crafted patterns of SPEC §8 do. Operators change them with
``RESERVEKIT_DETECTORS`` (a JSON object of the fields below). ``fingerprint`` goes into the
``usage_flags`` projection's version, so changing any threshold rebuilds the flags from the log.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

import msgspec

Positive = Annotated[int, msgspec.Meta(ge=1)]
Factor = Annotated[float, msgspec.Meta(gt=1.0, le=1000.0)]
Alpha = Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)]


class DetectorThresholds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Thresholds of the usage detectors. All times are event time (``occurred_at_us``)."""

    episode_gap_seconds: Positive = 3600
    """A hit more than this long after a flag's last hit opens a new flag; closer hits update it."""

    origin_mismatch_count: Positive = 5
    """``origin_mismatch_repeated``: refusals for a wrong Origin/Referer per key within the window."""
    origin_mismatch_window_seconds: Positive = 600

    failed_auth_count: Positive = 20
    """``failed_auth_burst``: missing/malformed/unknown keys (and IP-guard refusals) per client IP."""
    failed_auth_window_seconds: Positive = 60

    many_ips_count: Positive = 5
    """``key_many_ips``: distinct client IPs using one key within the window."""
    many_ips_window_seconds: Positive = 600

    new_ip_min_prior_uses: Positive = 20
    """``new_ip_first_use``: a key learns its IPs silently for this many requests, then a new IP flags."""

    rate_spike_factor: Factor = 5.0
    """``rate_spike``: a minute's count must reach this multiple of the key's per-minute EWMA …"""
    rate_spike_min_requests: Positive = 120
    """… and at least this many requests in that minute."""
    rate_spike_alpha: Alpha = 0.05
    """EWMA smoothing per minute (0.05: a half-life of about 13.5 minutes); idle minutes count as 0."""
    rate_spike_min_history_minutes: Positive = 30
    """Minutes of the key's history (first use to now) before its baseline is trusted."""

    scope_denial_count: Positive = 10
    """``scope_probing``: requests refused for missing scope per key within the window."""
    scope_denial_window_seconds: Positive = 600

    dormant_after_days: Positive = 30
    """``dormant_key_woke``: a use this many days or more after the key's previous use."""

    window_max_entries: Positive = 1000
    """Memory bound of one sliding window (its counts saturate here); every count above must be ≤ it."""

    def __post_init__(self) -> None:
        for name in ("origin_mismatch_count", "failed_auth_count", "many_ips_count", "scope_denial_count"):
            if getattr(self, name) > self.window_max_entries:
                raise ValueError(f"{name} must not exceed window_max_entries ({self.window_max_entries})")

    def fingerprint(self) -> str:
        """First 8 hex digits of SHA-256 over the canonical (sorted-key JSON) encoding."""
        canonical = msgspec.json.encode(msgspec.to_builtins(self), order="sorted")
        return hashlib.sha256(canonical).hexdigest()[:8]


DEFAULT_THRESHOLDS = DetectorThresholds()
