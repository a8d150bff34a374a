"""Runs every usage rule over usage rows in log order and folds the hits into flags.

Pure: it reads and changes a ``DetectorState`` and never looks at a clock or a database. Rules see
``occurred_at_us`` only, so replaying the same rows reproduces the same flags.
"""

from __future__ import annotations

from collections.abc import Iterable

from reservekit.clock import SECOND_US
from reservekit.detectors.config import DetectorThresholds
from reservekit.detectors.flags import absorb
from reservekit.detectors.per_key import (
    dormant_key_woke,
    expired_key_used,
    new_ip_first_use,
    revoked_key_used,
)
from reservekit.detectors.rate import rate_spike
from reservekit.detectors.rules import Hit
from reservekit.detectors.state import DetectorState
from reservekit.detectors.windowed import (
    failed_auth_burst,
    key_many_ips,
    origin_mismatch_repeated,
    scope_probing,
)
from reservekit.usage.records import UsageRecord


class Detectors:
    def __init__(self, limits: DetectorThresholds) -> None:
        self.limits = limits
        self._episode_gap_us = limits.episode_gap_seconds * SECOND_US

    def observe(self, state: DetectorState, record: UsageRecord) -> list[Hit]:
        """Every rule's hit for one row (the key's history is updated as a side effect)."""
        limits = self.limits
        if record.key_id is None:
            hit = failed_auth_burst(state, limits, record)
            return [] if hit is None else [hit]
        track = state.track(record.key_id, record.account_id, record.occurred_at_us)
        found: tuple[Hit | None, ...] = (
            dormant_key_woke(track, limits, record),
            new_ip_first_use(state, track, limits, record),
            rate_spike(track, limits, record),
        )
        track.uses += 1
        if record.occurred_at_us > track.last_seen_us:
            track.last_seen_us = record.occurred_at_us
        found += (
            revoked_key_used(record),
            expired_key_used(record),
            origin_mismatch_repeated(state, limits, record),
            scope_probing(state, limits, record),
            key_many_ips(state, limits, record),
            failed_auth_burst(state, limits, record),
        )
        return [hit for hit in found if hit is not None]

    def run(self, state: DetectorState, records: Iterable[UsageRecord]) -> list[Hit]:
        """Observe ``records`` in order, folding each hit into its flag; returns the hits."""
        hits: list[Hit] = []
        for record in records:
            for hit in self.observe(state, record):
                absorb(state, hit, episode_gap_us=self._episode_gap_us)
                hits.append(hit)
        return hits
