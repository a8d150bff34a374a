"""The usage_flags projection over the usage log, on both backends: each rule's flag and evidence,
quiet on a normal workload, one flag per episode, and a rebuild that reproduces the live flags."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from projections import usage_flags
from reservekit.clock import to_micros
from reservekit.db import read_transaction, write_transaction
from reservekit.detectors import DetectorThresholds
from reservekit.projecting import rebuild
from reservekit.projecting.rebuild import verify_projection
from reservekit.projecting.runner import catch_up, ensure_projection
from reservekit.projecting.spec import AnyProjection
from reservekit.usage.log import append_usage
from reservekit.usage.records import UsageRecord

T0 = to_micros(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
SECOND = 1_000_000
MINUTE = 60 * SECOND
DAY = 86_400 * SECOND
_ids = itertools.count()


def usage(
    at: int,
    key_id: str | None = "key_a",
    outcome: str = "ok",
    *,
    ip: str = "203.0.113.1",
    origin: str | None = None,
    route: str = "/v1/services",
    detail: str | None = None,
) -> UsageRecord:
    return UsageRecord(
        occurred_at_us=T0 + at,
        request_id=f"req_{next(_ids)}",
        key_id=key_id,
        account_id="acct_1" if key_id else None,
        client_ip=ip,
        origin=origin,
        method="GET",
        route=route,
        status=200 if outcome == "ok" else 401,
        outcome=outcome,
        detail=detail,
        latency_us=100,
    )


def steady(
    key_id: str, minutes: int, per_minute: int, *, ip: str = "203.0.113.1", start: int = 0
) -> list[UsageRecord]:
    step = MINUTE // per_minute
    return [
        usage(start + m * MINUTE + i * step, key_id, ip=ip) for m in range(minutes) for i in range(per_minute)
    ]


def normal_workload() -> list[UsageRecord]:
    rows = steady("key_norm", 120, 12) + steady("key_other", 120, 3, ip="198.51.100.2")
    rows += [
        usage(17 * MINUTE, "key_norm", "scope_denied"),
        usage(50 * MINUTE, None, "invalid", ip="192.0.2.200"),
    ]
    return rows


def suspicious_workload() -> list[UsageRecord]:
    rows = [
        usage(0, "key_rev"),
        *(usage(MINUTE + i * SECOND, "key_rev", "revoked", ip="192.0.2.66") for i in range(3)),
    ]
    rows += [usage(0, "key_exp", "expired", detail="rotated_out")]
    rows += [usage(i * SECOND, "key_org", "origin_mismatch", origin="https://evil.example") for i in range(5)]
    rows += [usage(i * SECOND, None, "invalid", ip="192.0.2.13") for i in range(20)]
    rows += [usage(i * SECOND, "key_ips", ip=f"10.9.0.{i}") for i in range(5)]
    rows += [*steady("key_new", 1, 20), usage(5 * MINUTE, "key_new", ip="10.1.1.1")]
    rows += steady("key_spike", 60, 10) + [usage(61 * MINUTE + i * 200_000, "key_spike") for i in range(150)]
    rows += [usage(i * SECOND, "key_scope", "scope_denied", route=f"/v1/r{i}") for i in range(10)]
    rows += [usage(0, "key_dorm"), usage(40 * DAY, "key_dorm")]
    return rows


def in_time_order(rows: Sequence[UsageRecord]) -> list[UsageRecord]:
    return sorted(rows, key=lambda r: r.occurred_at_us)


async def setup(engine: AsyncEngine, thresholds: DetectorThresholds | None = None) -> AnyProjection:
    projection: AnyProjection = usage_flags.make_projection(thresholds or DetectorThresholds())  # type: ignore[assignment]
    async with write_transaction(engine) as conn:
        await ensure_projection(conn, projection, _Clock())
    return projection


class _Clock:
    def now(self) -> datetime:
        return datetime(2026, 6, 1, tzinfo=UTC)

    def timestamp(self) -> float:
        return self.now().timestamp()


async def all_flags(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    table = usage_flags.LIVE.flags
    found: dict[str, list[dict[str, Any]]] = {}
    async with read_transaction(engine) as conn:
        for row in await conn.execute(select(table).order_by(table.c.first_seen_us)):
            flag = dict(row._mapping)
            flag["evidence"] = msgspec.json.decode(flag["evidence"])
            found.setdefault(flag["rule"], []).append(flag)
    return found


async def test_a_normal_workload_raises_no_flag(engine: AsyncEngine) -> None:
    projection = await setup(engine)
    await append_usage(engine, in_time_order(normal_workload()), recorded_at_us=T0)
    assert await catch_up(engine, projection) > 0
    assert await all_flags(engine) == {}


async def test_each_rule_fires_with_its_evidence_and_a_rebuild_reproduces_it(engine: AsyncEngine) -> None:
    projection = await setup(engine)
    await append_usage(engine, in_time_order(normal_workload() + suspicious_workload()), recorded_at_us=T0)
    await catch_up(engine, projection, batch_size=37)  # odd batch cuts: state must carry across them
    flags = await all_flags(engine)
    assert {rule: len(found) for rule, found in flags.items()} == {
        "revoked_key_used": 1,
        "expired_key_used": 1,
        "origin_mismatch_repeated": 1,
        "failed_auth_burst": 1,
        "key_many_ips": 1,
        "new_ip_first_use": 1,
        "rate_spike": 1,
        "scope_probing": 1,
        "dormant_key_woke": 1,
    }
    revoked = flags["revoked_key_used"][0]
    assert (revoked["key_id"], revoked["account_id"], revoked["severity"]) == ("key_rev", "acct_1", "high")
    assert revoked["hits"] == 3
    assert (revoked["first_seen_us"], revoked["last_seen_us"]) == (T0 + MINUTE, T0 + MINUTE + 2 * SECOND)
    assert revoked["evidence"]["ips"] == ["192.0.2.66"]
    assert flags["expired_key_used"][0]["evidence"]["reasons"] == ["rotated_out"]
    origin = flags["origin_mismatch_repeated"][0]["evidence"]
    assert (origin["count"], origin["window_seconds"], origin["origins"]) == (
        5,
        600,
        ["https://evil.example"],
    )
    burst = flags["failed_auth_burst"][0]
    assert (burst["subject"], burst["account_id"], burst["evidence"]["count"]) == ("ip:192.0.2.13", None, 20)
    assert flags["key_many_ips"][0]["evidence"]["ips"] == [f"10.9.0.{i}" for i in range(5)]
    assert flags["new_ip_first_use"][0]["evidence"]["new_ips"] == ["10.1.1.1"]
    spike = flags["rate_spike"][0]["evidence"]
    assert spike["count"] == 120
    assert 9 < spike["baseline_ewma"] < 11
    assert len(flags["scope_probing"][0]["evidence"]["routes"]) == 10
    assert flags["dormant_key_woke"][0]["evidence"]["idle_days"] == 40
    result = await verify_projection(engine, projection)
    assert result.differences == ()


async def test_repeated_hits_update_one_flag_across_batches_until_an_episode_gap(engine: AsyncEngine) -> None:
    projection = await setup(engine)
    await append_usage(engine, [usage(0, "key_r", "revoked")], recorded_at_us=T0)
    await catch_up(engine, projection)
    [first] = (await all_flags(engine))["revoked_key_used"]
    await append_usage(engine, [usage(10 * MINUTE, "key_r", "revoked", ip="192.0.2.9")], recorded_at_us=T0)
    await append_usage(
        engine, [usage(20 * MINUTE, "key_r", "revoked", origin="https://x.example")], recorded_at_us=T0
    )
    await catch_up(engine, projection, batch_size=1)
    [again] = (await all_flags(engine))["revoked_key_used"]
    assert again["flag_id"] == first["flag_id"]
    assert again["hits"] == 3
    assert again["last_seen_us"] == T0 + 20 * MINUTE
    assert again["evidence"]["ips"] == ["192.0.2.9", "203.0.113.1"]
    assert again["evidence"]["origins"] == ["https://x.example"]
    await append_usage(engine, [usage(3 * 60 * MINUTE, "key_r", "revoked")], recorded_at_us=T0)
    await catch_up(engine, projection)
    episodes = (await all_flags(engine))["revoked_key_used"]
    assert [f["hits"] for f in episodes] == [3, 1]
    assert episodes[1]["flag_id"] != first["flag_id"]
    assert (await verify_projection(engine, projection)).differences == ()


async def test_changing_a_threshold_changes_the_version_and_replays_the_log(engine: AsyncEngine) -> None:
    default = await setup(engine)
    await append_usage(
        engine, [usage(i * SECOND, None, "invalid", ip="192.0.2.5") for i in range(6)], recorded_at_us=T0
    )
    await catch_up(engine, default)
    assert await all_flags(engine) == {}
    stricter = usage_flags.make_projection(DetectorThresholds(failed_auth_count=5))
    assert stricter.version != default.version
    assert usage_flags.make_projection(DetectorThresholds()).version == default.version
    projection = await setup(engine, DetectorThresholds(failed_auth_count=5))
    await catch_up(engine, projection)
    [burst] = (await all_flags(engine))["failed_auth_burst"]
    assert burst["hits"] == 2
    assert (await verify_projection(engine, projection)).differences == ()


@pytest.mark.parametrize(
    ("flush_rows", "max_entries"),
    [(100_000, 500_000), (7, 500_000), (50, 25)],
    ids=["held-to-the-end", "written-every-7-rows", "forgotten-past-25-entries"],
)
async def test_a_rebuild_holding_the_state_in_memory_writes_what_the_live_batches_did(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, flush_rows: int, max_entries: int
) -> None:
    projection = await setup(engine)
    rows = in_time_order(normal_workload() + suspicious_workload())
    rows += [usage(41 * DAY + i * SECOND, "key_rev", "revoked") for i in range(3)]  # a second episode
    await append_usage(engine, rows, recorded_at_us=T0)
    await catch_up(engine, projection, batch_size=37)
    assert sum(map(len, (await all_flags(engine)).values())) == 11  # each rule, and key_rev woke up again
    monkeypatch.setattr(usage_flags.Replay, "FLUSH_ROWS", flush_rows)
    monkeypatch.setattr(usage_flags.Replay, "MAX_ENTRIES", max_entries)
    monkeypatch.setattr(rebuild, "DEFAULT_BATCH_SIZE", 13)
    assert (await verify_projection(engine, projection)).differences == ()
