"""Each detection rule on its own: fires on a crafted sequence, stays quiet on a normal one, honours
its thresholds. Pure: an in-memory DetectorState, no database, no clock."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import msgspec
import pytest

from reservekit.detectors import Detectors, DetectorState, DetectorThresholds
from reservekit.detectors.flags import flag_id_for
from reservekit.detectors.rules import RULES
from reservekit.settings import SettingsError, load_settings
from reservekit.usage.records import UsageRecord

T0 = 1_780_000_000_000_000  # 2026-05-28, in microseconds
SECOND = 1_000_000
MINUTE = 60 * SECOND
DAY = 86_400 * SECOND
_ids = itertools.count(1)


def row(
    at: int,
    outcome: str = "ok",
    *,
    key: str | None = "key_a",
    ip: str = "10.0.0.1",
    origin: str | None = None,
    route: str = "/v1/services",
    detail: str | None = None,
) -> UsageRecord:
    n = next(_ids)
    return UsageRecord(
        occurred_at_us=T0 + at,
        request_id=f"req_{n}",
        key_id=key,
        account_id="acct_a" if key else None,
        client_ip=ip,
        origin=origin,
        method="GET",
        route=route,
        status=200 if outcome == "ok" else 401,
        outcome=outcome,
        detail=detail,
        latency_us=500,
        position=n,
    )


def run(records: Iterable[UsageRecord], limits: DetectorThresholds | None = None) -> DetectorState:
    state = DetectorState()
    Detectors(limits or DetectorThresholds()).run(state, records)
    return state


def flags(state: DetectorState, rule: str | None = None) -> list[dict[str, object]]:
    found = [msgspec.structs.asdict(f) for f in state.dirty_flags.values()]
    return [f for f in found if rule is None or f["rule"] == rule]


def steady(
    minutes: int, per_minute: int, *, key: str = "key_a", ip: str = "10.0.0.1", start: int = 0
) -> list[UsageRecord]:
    return [
        row(start + m * MINUTE + i * (MINUTE // per_minute), key=key, ip=ip)
        for m in range(minutes)
        for i in range(per_minute)
    ]


def test_every_rule_is_documented_with_a_severity() -> None:
    assert set(RULES) == {
        "revoked_key_used",
        "expired_key_used",
        "origin_mismatch_repeated",
        "failed_auth_burst",
        "key_many_ips",
        "new_ip_first_use",
        "rate_spike",
        "scope_probing",
        "dormant_key_woke",
        "leaked_key_reported",
        "webhook_endpoint_disabled",
    }
    fields = {f.name for f in msgspec.structs.fields(DetectorThresholds)}
    for rule in RULES.values():
        assert rule.severity in {"low", "medium", "high", "critical"}
        assert set(rule.settings) <= fields


def test_a_normal_workload_raises_nothing() -> None:
    records = steady(180, 20, key="key_a", ip="10.0.0.1")
    records += steady(180, 5, key="key_b", ip="10.0.0.2")
    records += [row(m * MINUTE + 7, key="key_b", ip="10.0.0.3") for m in range(180)]
    records += [
        row(30 * MINUTE, "scope_denied", key="key_a"),
        row(95 * MINUTE, "origin_mismatch", key="key_b", ip="10.0.0.2"),
    ]
    records += [row(m * 20 * MINUTE, "invalid", key=None, ip="198.51.100.7") for m in range(9)]
    records.sort(key=lambda r: r.occurred_at_us)
    assert flags(run(records)) == []


def test_revoked_key_used_fires_on_every_use_and_folds_into_one_flag() -> None:
    state = run(
        [
            row(0),
            row(MINUTE, "revoked", origin="https://a.example"),
            row(2 * MINUTE, "revoked", ip="10.0.0.9"),
        ]
    )
    [flag] = flags(state, "revoked_key_used")
    assert flag["severity"] == "high"
    assert flag["hits"] == 2
    assert flag["first_seen_us"] == T0 + MINUTE
    assert flag["last_seen_us"] == T0 + 2 * MINUTE
    evidence = flag["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["ips"] == ["10.0.0.1", "10.0.0.9"]
    assert evidence["origins"] == ["https://a.example"]
    assert flags(run([row(0), row(MINUTE)]), "revoked_key_used") == []


def test_expired_and_rotated_out_keys_used() -> None:
    state = run([row(0, "expired"), row(SECOND, "expired", detail="rotated_out")])
    [flag] = flags(state, "expired_key_used")
    assert flag["severity"] == "medium"
    assert flag["evidence"]["reasons"] == ["expired", "rotated_out"]  # type: ignore[index]
    assert flag["hits"] == 2


def test_repeated_origin_mismatches_within_the_window() -> None:
    mismatches = [
        row(i * 30 * SECOND, "origin_mismatch", origin=f"https://evil{i % 2}.example") for i in range(5)
    ]
    [flag] = flags(run(mismatches), "origin_mismatch_repeated")
    assert flag["hits"] == 1
    assert flag["evidence"]["count"] == 5  # type: ignore[index]
    assert flag["evidence"]["window_seconds"] == 600  # type: ignore[index]
    assert flag["evidence"]["origins"] == ["https://evil0.example", "https://evil1.example"]  # type: ignore[index]
    assert flags(run(mismatches[:4]), "origin_mismatch_repeated") == []
    spread = [row(i * 11 * MINUTE, "origin_mismatch") for i in range(10)]
    assert flags(run(spread), "origin_mismatch_repeated") == []
    assert flags(run(mismatches[:2], DetectorThresholds(origin_mismatch_count=2)), "origin_mismatch_repeated")


def test_failed_auth_burst_from_one_ip() -> None:
    burst = [
        row(i * SECOND, "invalid" if i % 2 else "malformed", key=None, ip="203.0.113.5") for i in range(20)
    ]
    [flag] = flags(run(burst), "failed_auth_burst")
    assert flag["subject"] == "ip:203.0.113.5"
    assert flag["account_id"] is None
    assert flag["severity"] == "high"
    assert flag["evidence"]["outcomes"] == ["invalid", "malformed"]  # type: ignore[index]
    assert flags(run(burst[:19]), "failed_auth_burst") == []
    many_ips = [row(i * SECOND, "invalid", key=None, ip=f"203.0.113.{i}") for i in range(40)]
    assert flags(run(many_ips), "failed_auth_burst") == []
    slow = [row(i * 10 * SECOND, "invalid", key=None, ip="203.0.113.5") for i in range(40)]
    assert flags(run(slow), "failed_auth_burst") == []
    guarded = [row(i * SECOND, "rate_limited", key=None, ip="203.0.113.5") for i in range(20)]
    assert flags(run(guarded), "failed_auth_burst")
    assert flags(run(burst[:5], DetectorThresholds(failed_auth_count=5)), "failed_auth_burst")


def test_one_key_from_many_ips_in_a_window() -> None:
    spread = [row(i * MINUTE, ip=f"192.0.2.{i}") for i in range(5)]
    [flag] = flags(run(spread), "key_many_ips")
    assert flag["evidence"]["distinct_ips"] == 5  # type: ignore[index]
    assert flag["evidence"]["ips"] == [f"192.0.2.{i}" for i in range(5)]  # type: ignore[index]
    assert flags(run(spread[:4]), "key_many_ips") == []
    slow = [row(i * 11 * MINUTE, ip=f"192.0.2.{i}") for i in range(10)]
    assert flags(run(slow), "key_many_ips") == []
    assert flags(run(spread[:3], DetectorThresholds(many_ips_count=3)), "key_many_ips")


def test_first_use_from_a_new_ip_after_the_learning_period() -> None:
    history = steady(1, 20)
    newcomer = row(2 * MINUTE, ip="198.51.100.1")
    [flag] = flags(run([*history, newcomer]), "new_ip_first_use")
    assert flag["severity"] == "low"
    assert flag["evidence"]["new_ips"] == ["198.51.100.1"]  # type: ignore[index]
    assert flag["evidence"]["prior_uses"] == 20  # type: ignore[index]
    assert flags(run([*history[:19], newcomer]), "new_ip_first_use") == []
    assert flags(run([*history, row(2 * MINUTE)]), "new_ip_first_use") == []
    again = run([*history, newcomer, row(3 * MINUTE, ip="198.51.100.1")])
    assert flags(again, "new_ip_first_use")[0]["hits"] == 1
    assert flags(
        run([*history[:5], newcomer], DetectorThresholds(new_ip_min_prior_uses=5)), "new_ip_first_use"
    )


def test_rate_spike_against_the_keys_own_ewma_baseline() -> None:
    baseline = steady(60, 10)
    spike = [row(61 * MINUTE + i * 100_000) for i in range(200)]
    [flag] = flags(run([*baseline, *spike]), "rate_spike")
    evidence = flag["evidence"]
    assert isinstance(evidence, dict)
    assert flag["hits"] == 1
    assert evidence["count"] == 120  # max(120, ceil(5 x EWMA)): the EWMA of idle-free 10/min is ~10
    assert 9 < evidence["baseline_ewma"] < 11
    assert "EWMA" in evidence["statistic"]
    assert flags(run(steady(90, 10)), "rate_spike") == []
    busy = steady(60, 50)
    burst = [row(61 * MINUTE + i * 100_000) for i in range(200)]
    assert flags(run([*busy, *burst]), "rate_spike") == []  # 200 < 5 x 50
    assert flags(run([*busy, *burst], DetectorThresholds(rate_spike_factor=3.0)), "rate_spike")
    young = [row(i * 100_000) for i in range(500)]
    assert flags(run(young), "rate_spike") == []  # no baseline yet


def test_repeated_scope_denials() -> None:
    probes = [row(i * 10 * SECOND, "scope_denied", route=f"/v1/r{i % 3}") for i in range(10)]
    [flag] = flags(run(probes), "scope_probing")
    assert flag["evidence"]["routes"] == ["GET /v1/r0", "GET /v1/r1", "GET /v1/r2"]  # type: ignore[index]
    assert flags(run(probes[:9]), "scope_probing") == []
    assert flags(run(probes[:3], DetectorThresholds(scope_denial_count=3)), "scope_probing")


def test_dormant_key_waking_up() -> None:
    [flag] = flags(run([row(0), row(31 * DAY)]), "dormant_key_woke")
    assert flag["evidence"]["idle_days"] == 31  # type: ignore[index]
    assert flags(run([row(0), row(29 * DAY)]), "dormant_key_woke") == []
    assert flags(run([row(0), row(8 * DAY)], DetectorThresholds(dormant_after_days=7)), "dormant_key_woke")


def test_a_quiet_episode_gap_opens_a_new_flag_with_a_new_deterministic_id() -> None:
    state = run([row(0, "revoked"), row(30 * MINUTE, "revoked"), row(3 * 60 * MINUTE, "revoked")])
    found = sorted(flags(state, "revoked_key_used"), key=lambda f: f["first_seen_us"])  # type: ignore[arg-type,return-value]
    assert [f["hits"] for f in found] == [2, 1]
    assert found[0]["flag_id"] == flag_id_for("revoked_key_used", "key:key_a", T0)
    assert found[1]["flag_id"] == flag_id_for("revoked_key_used", "key:key_a", T0 + 3 * 60 * MINUTE)


def test_thresholds_fingerprint_is_stable_and_follows_every_value() -> None:
    assert DetectorThresholds().fingerprint() == DetectorThresholds().fingerprint()
    assert len(DetectorThresholds().fingerprint()) == 8
    assert DetectorThresholds(failed_auth_count=21).fingerprint() != DetectorThresholds().fingerprint()
    with pytest.raises(ValueError, match="window_max_entries"):
        DetectorThresholds(failed_auth_count=5000)


def test_thresholds_come_from_the_environment() -> None:
    settings = load_settings({"RESERVEKIT_DETECTORS": '{"failed_auth_count": 50, "dormant_after_days": 7}'})
    assert settings.detectors.failed_auth_count == 50
    assert settings.detectors.dormant_after_days == 7
    assert settings.detectors.many_ips_count == DetectorThresholds().many_ips_count
    for bad in ('{"failed_auth_count": 0}', '{"nope": 1}', "[1]", '{"failed_auth_count": 5000}'):
        with pytest.raises(SettingsError, match="RESERVEKIT_DETECTORS"):
            load_settings({"RESERVEKIT_DETECTORS": bad})
