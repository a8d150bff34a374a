"""Per-row and per-key-history rules: revoked or expired keys in use, dormant keys, new IPs."""

from __future__ import annotations

from typing import Any

from reservekit.clock import DAY_US
from reservekit.detectors.config import DetectorThresholds
from reservekit.detectors.rules import (
    DORMANT_KEY_WOKE,
    EXPIRED_KEY_USED,
    NEW_IP_FIRST_USE,
    REVOKED_KEY_USED,
    Hit,
    iso,
    key_subject,
)
from reservekit.detectors.state import DetectorState, KeyTrack
from reservekit.usage.records import UsageRecord


def _hit(rule: str, record: UsageRecord, evidence: dict[str, Any]) -> Hit:
    assert record.key_id is not None
    return Hit(
        rule=rule,
        subject=key_subject(record.key_id),
        at_us=record.occurred_at_us,
        account_id=record.account_id,
        key_id=record.key_id,
        client_ip=record.client_ip,
        origin=record.origin,
        evidence=evidence,
    )


def revoked_key_used(record: UsageRecord) -> Hit | None:
    if record.outcome != "revoked" or record.key_id is None:
        return None
    return _hit(REVOKED_KEY_USED, record, {"routes": [f"{record.method} {record.route}"]})


def expired_key_used(record: UsageRecord) -> Hit | None:
    """``detail == "rotated_out"`` marks a key whose rotation grace period ended."""
    if record.outcome != "expired" or record.key_id is None:
        return None
    reason = "rotated_out" if record.detail == "rotated_out" else "expired"
    return _hit(
        EXPIRED_KEY_USED, record, {"reasons": [reason], "routes": [f"{record.method} {record.route}"]}
    )


def dormant_key_woke(track: KeyTrack, limits: DetectorThresholds, record: UsageRecord) -> Hit | None:
    """The gap between this use and the key's previous one (``track`` not yet updated)."""
    if track.uses == 0:
        return None
    gap = record.occurred_at_us - track.last_seen_us
    if gap < limits.dormant_after_days * DAY_US:
        return None
    return _hit(
        DORMANT_KEY_WOKE,
        record,
        {
            "previous_use": iso(track.last_seen_us),
            "idle_days": gap // DAY_US,
            "threshold_days": limits.dormant_after_days,
        },
    )


def new_ip_first_use(
    state: DetectorState, track: KeyTrack, limits: DetectorThresholds, record: UsageRecord
) -> Hit | None:
    """An IP the key has never used, after the key's first ``new_ip_min_prior_uses`` requests."""
    assert record.key_id is not None
    if not state.learn_ip(record.key_id, record.client_ip, record.occurred_at_us):
        return None
    if track.uses < limits.new_ip_min_prior_uses:
        return None
    return _hit(
        NEW_IP_FIRST_USE,
        record,
        {"new_ips": [record.client_ip], "prior_uses": track.uses, "key_first_seen": iso(track.first_seen_us)},
    )
