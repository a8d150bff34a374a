"""Sliding-window rules: too many of something for one key or one IP within a window of event time.

Each rule keeps one ``Window`` per subject. Counting rules fire on every row while the count in the
window is at or above the threshold; ``key_many_ips`` counts distinct IPs instead of rows.
"""

from __future__ import annotations

from reservekit.auth.outcomes import GUESSING_OUTCOMES
from reservekit.clock import SECOND_US
from reservekit.detectors.config import DetectorThresholds
from reservekit.detectors.rules import (
    FAILED_AUTH_BURST,
    KEY_MANY_IPS,
    ORIGIN_MISMATCH_REPEATED,
    SCOPE_PROBING,
    Hit,
    ip_subject,
    key_subject,
)
from reservekit.detectors.state import DetectorState
from reservekit.usage.records import UsageRecord

NO_ORIGIN = "(none)"


def is_failed_auth(record: UsageRecord) -> bool:
    """A guess at a key, or the per-IP guessing guard refusing (rate_limited before any key is known)."""
    return record.outcome in GUESSING_OUTCOMES or (record.outcome == "rate_limited" and record.key_id is None)


def _counted(
    state: DetectorState,
    limits: DetectorThresholds,
    record: UsageRecord,
    *,
    rule: str,
    subject: str,
    value: str,
    threshold: int,
    window_seconds: int,
    label: str,
) -> Hit | None:
    window = state.window(rule, subject)
    window.add(
        record.occurred_at_us,
        value,
        span_us=window_seconds * SECOND_US,
        cap=limits.window_max_entries,
        count_times=True,
    )
    if window.count < threshold:
        return None
    return Hit(
        rule=rule,
        subject=subject,
        at_us=record.occurred_at_us,
        account_id=record.account_id,
        key_id=record.key_id,
        client_ip=record.client_ip,
        origin=record.origin,
        evidence={
            "count": window.count,
            "threshold": threshold,
            "window_seconds": window_seconds,
            label: window.distinct(),
        },
    )


def origin_mismatch_repeated(
    state: DetectorState, limits: DetectorThresholds, record: UsageRecord
) -> Hit | None:
    if record.outcome != "origin_mismatch" or record.key_id is None:
        return None
    return _counted(
        state,
        limits,
        record,
        rule=ORIGIN_MISMATCH_REPEATED,
        subject=key_subject(record.key_id),
        value=record.origin or NO_ORIGIN,
        threshold=limits.origin_mismatch_count,
        window_seconds=limits.origin_mismatch_window_seconds,
        label="origins",
    )


def scope_probing(state: DetectorState, limits: DetectorThresholds, record: UsageRecord) -> Hit | None:
    if record.outcome != "scope_denied" or record.key_id is None:
        return None
    return _counted(
        state,
        limits,
        record,
        rule=SCOPE_PROBING,
        subject=key_subject(record.key_id),
        value=f"{record.method} {record.route}",
        threshold=limits.scope_denial_count,
        window_seconds=limits.scope_denial_window_seconds,
        label="routes",
    )


def failed_auth_burst(state: DetectorState, limits: DetectorThresholds, record: UsageRecord) -> Hit | None:
    if not is_failed_auth(record):
        return None
    return _counted(
        state,
        limits,
        record,
        rule=FAILED_AUTH_BURST,
        subject=ip_subject(record.client_ip),
        value=record.outcome,
        threshold=limits.failed_auth_count,
        window_seconds=limits.failed_auth_window_seconds,
        label="outcomes",
    )


def key_many_ips(state: DetectorState, limits: DetectorThresholds, record: UsageRecord) -> Hit | None:
    if record.key_id is None:
        return None
    subject = key_subject(record.key_id)
    window = state.window(KEY_MANY_IPS, subject)
    window.add(
        record.occurred_at_us,
        record.client_ip,
        span_us=limits.many_ips_window_seconds * SECOND_US,
        cap=limits.window_max_entries,
        count_times=False,
    )
    distinct = len(window.values)
    if distinct < limits.many_ips_count:
        return None
    return Hit(
        rule=KEY_MANY_IPS,
        subject=subject,
        at_us=record.occurred_at_us,
        account_id=record.account_id,
        key_id=record.key_id,
        client_ip=record.client_ip,
        origin=record.origin,
        evidence={
            "distinct_ips": distinct,
            "threshold": limits.many_ips_count,
            "window_seconds": limits.many_ips_window_seconds,
            "ips": window.distinct(),
        },
    )
