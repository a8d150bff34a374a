"""The key_usage projection over the usage log: counts, last use, first seen, resumption, rebuilds."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from projections import key_usage
from projections.key_usage import KeyUsageTables
from reservekit.background import WakeUp
from reservekit.clock import DAY_US, HOUR_US, MINUTE_US, from_micros, to_micros
from reservekit.db import read_transaction, write_transaction
from reservekit.projecting.rebuild import position_as_of, rebuild_into, verify_projection
from reservekit.projecting.runner import ProjectionRunner, apply_next_batch, catch_up
from reservekit.projecting.spec import AnyProjection, Projection
from reservekit.usage.log import append_usage
from reservekit.usage.records import UsageRecord

PROJECTION: AnyProjection = key_usage.PROJECTION  # type: ignore[assignment]
T0 = to_micros(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
_ids = itertools.count()


def usage(
    at_us: int,
    key_id: str | None = "key_a",
    *,
    outcome: str = "ok",
    ip: str = "203.0.113.1",
    origin: str | None = None,
    account_id: str | None = "acct_1",
) -> UsageRecord:
    return UsageRecord(
        occurred_at_us=at_us,
        request_id=f"req_{next(_ids)}",
        key_id=key_id,
        account_id=account_id if key_id else None,
        client_ip=ip,
        origin=origin,
        method="GET",
        route="/v1/services",
        status=200 if outcome == "ok" else 401,
        outcome=outcome,
        detail=None,
        latency_us=100,
    )


async def append(engine: AsyncEngine, rows: Sequence[UsageRecord], recorded_at_us: int = T0) -> None:
    await append_usage(engine, rows, recorded_at_us=recorded_at_us)


async def minute_rows(engine: AsyncEngine, suffix: str = "") -> dict[tuple[str, int, str], int]:
    table = PROJECTION.tables(suffix)[0] if suffix else PROJECTION.live[0]
    async with read_transaction(engine) as conn:
        result = await conn.execute(select(table))
        return {(r.key_id, r.minute_us, r.outcome): int(r.count) for r in result}


async def activity(engine: AsyncEngine) -> dict[str, tuple[str | None, int, str, str | None]]:
    table = key_usage.PROJECTION.live.activity
    async with read_transaction(engine) as conn:
        result = await conn.execute(select(table))
        return {r.key_id: (r.account_id, r.last_used_at_us, r.last_ip, r.last_origin) for r in result}


@pytest.fixture
async def runner(engine: AsyncEngine) -> ProjectionRunner:
    runner = ProjectionRunner(engine, [PROJECTION], WakeUp())
    await runner.setup()
    return runner


async def test_counts_per_minute_and_outcome_last_use_and_first_seen(
    engine: AsyncEngine, runner: ProjectionRunner
) -> None:
    await append(
        engine,
        [
            usage(T0 + 1_000_000, ip="198.51.100.7", origin="https://a.example"),
            usage(T0 + 59_999_999),
            usage(T0 + 5_000_000, outcome="origin_mismatch", origin="https://evil.example"),
            usage(T0 + MINUTE_US, ip="198.51.100.7"),
            usage(T0 + 2 * MINUTE_US, "key_b", outcome="revoked", account_id="acct_2"),
            usage(T0 + 3 * MINUTE_US, None, outcome="invalid"),  # no key: not counted here
            usage(T0 + 4 * MINUTE_US, None, outcome="missing"),
        ],
    )
    assert await runner.run_all_once() == 7
    assert await minute_rows(engine) == {
        ("key_a", T0, "ok"): 2,
        ("key_a", T0, "origin_mismatch"): 1,
        ("key_a", T0 + MINUTE_US, "ok"): 1,
        ("key_b", T0 + 2 * MINUTE_US, "revoked"): 1,
    }
    assert await activity(engine) == {
        "key_a": ("acct_1", T0 + MINUTE_US, "198.51.100.7", None),
        "key_b": ("acct_2", T0 + 2 * MINUTE_US, "203.0.113.1", None),
    }
    # A later batch with older rows adds counts but neither moves "last" back nor "first seen" forward.
    await append(engine, [usage(T0 - HOUR_US, ip="192.0.2.9"), usage(T0 + 30 * MINUTE_US, ip="198.51.100.7")])
    await runner.run_all_once()
    async with read_transaction(engine) as conn:
        assert await key_usage.last_used(conn, ["key_a", "key_b", "key_none"]) == {
            "key_a": T0 + 30 * MINUTE_US,
            "key_b": T0 + 2 * MINUTE_US,
        }
        assert await key_usage.first_seen(conn, "key_a") == {
            "ip": {"192.0.2.9": T0 - HOUR_US, "198.51.100.7": T0 + 1_000_000, "203.0.113.1": T0 + 5_000_000},
            "origin": {"https://a.example": T0 + 1_000_000, "https://evil.example": T0 + 5_000_000},
        }
    assert (await minute_rows(engine))[("key_a", T0 - HOUR_US, "ok")] == 1


async def test_a_tie_on_time_goes_to_the_later_position_across_batches(
    engine: AsyncEngine, runner: ProjectionRunner
) -> None:
    await append(engine, [usage(T0, ip="192.0.2.1"), usage(T0, ip="192.0.2.2")])
    await append(engine, [usage(T0, ip="192.0.2.3", origin="https://x.example")])
    await append(engine, [usage(T0 - 1, ip="192.0.2.4")])
    assert await apply_next_batch(engine, PROJECTION, batch_size=1) == 1
    await catch_up(engine, PROJECTION, batch_size=1)
    assert (await activity(engine))["key_a"] == ("acct_1", T0, "192.0.2.3", "https://x.example")
    assert (await verify_projection(engine, PROJECTION)).differences == ()  # batch size of 2000


async def test_usage_buckets_by_minute_hour_and_day(engine: AsyncEngine, runner: ProjectionRunner) -> None:
    rows = [usage(T0 + i * 20 * MINUTE_US) for i in range(6)]  # 12:00 … 13:40, three per hour
    rows += [usage(T0 + 10 * MINUTE_US, outcome="rate_limited"), usage(T0 + DAY_US)]
    await append(engine, rows)
    await runner.run_all_once()
    async with read_transaction(engine) as conn:
        hours = await key_usage.usage_buckets(conn, "key_a", T0, T0 + DAY_US + HOUR_US, HOUR_US)
        assert hours == [
            (T0, {"ok": 3, "rate_limited": 1}),
            (T0 + HOUR_US, {"ok": 3}),
            (T0 + DAY_US, {"ok": 1}),
        ]
        days = await key_usage.usage_buckets(conn, "key_a", T0 - DAY_US, T0 + 2 * DAY_US, DAY_US)
        day0 = T0 - 12 * HOUR_US  # UTC midnight
        assert days == [(day0, {"ok": 6, "rate_limited": 1}), (day0 + DAY_US, {"ok": 1})]
        # [since, until) selects every minute overlapping it: 12:20:30 keeps minute 12:20, 13:00 is out.
        minutes = await key_usage.usage_buckets(
            conn, "key_a", T0 + 20 * MINUTE_US + 30_000_000, T0 + HOUR_US, MINUTE_US
        )
        assert minutes == [(T0 + 20 * MINUTE_US, {"ok": 1}), (T0 + 40 * MINUTE_US, {"ok": 1})]
        assert await key_usage.usage_buckets(conn, "key_other", T0, T0 + DAY_US, HOUR_US) == []


def _crash_after_writing(projection: AnyProjection) -> AnyProjection:
    async def apply(conn: AsyncConnection, tables: KeyUsageTables, batch: Sequence[UsageRecord]) -> None:
        await key_usage.apply(conn, tables, batch)  # the rows are written, then the process "dies"
        raise RuntimeError("crash mid-batch")

    return Projection(  # type: ignore[return-value]
        name=projection.name,
        version=projection.version,
        define=key_usage.define,
        apply=apply,
        source=projection.source,
    )


async def test_a_crash_mid_batch_is_redone_exactly_once(
    engine: AsyncEngine, runner: ProjectionRunner
) -> None:
    await append(engine, [usage(T0 + i * 1_000_000) for i in range(5)])
    assert await apply_next_batch(engine, PROJECTION, batch_size=2) == 2
    crashing = _crash_after_writing(PROJECTION)
    with pytest.raises(RuntimeError, match="crash mid-batch"):
        await apply_next_batch(engine, crashing, batch_size=2)
    assert await minute_rows(engine) == {("key_a", T0, "ok"): 2}  # the failed batch rolled back
    assert await catch_up(engine, PROJECTION) == 3
    assert await minute_rows(engine) == {("key_a", T0, "ok"): 5}
    assert await catch_up(engine, PROJECTION) == 0


async def test_rebuild_verify_matches_and_catches_a_corrupted_count(
    engine: AsyncEngine, runner: ProjectionRunner
) -> None:
    for batch in range(4):
        await append(
            engine,
            [
                usage(
                    T0 + (batch * 7 + i) * 13_000_000,
                    f"key_{i % 3}",
                    ip=f"192.0.2.{i % 4}",
                    outcome=("ok", "ok", "scope_denied", "expired")[i % 4],
                    origin=None if i % 2 else f"https://{i % 3}.example",
                )
                for i in range(25)
            ],
        )
        await catch_up(engine, PROJECTION, batch_size=7)
    assert (await verify_projection(engine, PROJECTION)).differences == ()
    minutes = key_usage.PROJECTION.live.minutes
    async with write_transaction(engine) as conn:
        await conn.execute(update(minutes).where(minutes.c.key_id == "key_1").values(count=99))
    differences = (await verify_projection(engine, PROJECTION)).differences
    assert differences
    assert any("key_1" in line for line in differences)


async def test_as_of_rebuild_stops_at_the_instant_and_leaves_live_alone(
    engine: AsyncEngine, runner: ProjectionRunner
) -> None:
    await append(engine, [usage(T0), usage(T0 + 1)], recorded_at_us=T0 + 10)
    await append(engine, [usage(T0 + MINUTE_US, outcome="revoked")], recorded_at_us=T0 + HOUR_US)
    await runner.run_all_once()
    until = await position_as_of(engine, PROJECTION, from_micros(T0 + HOUR_US - 1))
    assert until == 2
    result = await rebuild_into(engine, PROJECTION, suffix="__asof", until=until)
    assert result.events_applied == 2
    assert await minute_rows(engine, "__asof") == {("key_a", T0, "ok"): 2}
    assert await minute_rows(engine) == {("key_a", T0, "ok"): 2, ("key_a", T0 + MINUTE_US, "revoked"): 1}


ROLLUP_KEYS = {"key_a": "acct_1", "key_b": "acct_1", "key_c": "acct_2"}


def expected_series(
    rows: Sequence[UsageRecord], keys: set[str], since_us: int, until_us: int, width: int
) -> tuple[list[key_usage.UsageBucket], dict[int, int]]:
    """The minute-level answer, computed straight from the rows: counts per bucket and busiest minute."""
    counts: dict[int, dict[str, int]] = {}
    per_minute: dict[int, int] = {}
    for row in rows:
        minute = row.occurred_at_us - row.occurred_at_us % MINUTE_US
        if row.key_id not in keys or not since_us - MINUTE_US < minute < until_us:
            continue
        bucket = counts.setdefault(minute - minute % width, {})
        bucket[row.outcome] = bucket.get(row.outcome, 0) + 1
        per_minute[minute] = per_minute.get(minute, 0) + 1
    busiest: dict[int, int] = {}
    for minute, n in per_minute.items():
        busiest[minute - minute % width] = max(busiest.get(minute - minute % width, 0), n)
    return [key_usage.UsageBucket(s, dict(sorted(counts[s].items()))) for s in sorted(counts)], busiest


@pytest.mark.parametrize("seed", [1, 2])
async def test_the_hourly_rollup_answers_exactly_what_the_minute_rows_do(
    engine: AsyncEngine, runner: ProjectionRunner, seed: int
) -> None:
    rng = random.Random(seed)
    # A few hundred requests over three days, crowded into few minutes so minutes and hours repeat.
    rows = []
    for _ in range(400):
        key_id = rng.choice(list(ROLLUP_KEYS))
        at = (
            T0
            + rng.randrange(72) * HOUR_US
            + rng.choice([0, 1, 7, 59]) * MINUTE_US
            + rng.randrange(MINUTE_US)
        )
        outcome = rng.choice(["ok", "ok", "rate_limited", "revoked_key"])
        rows.append(usage(at, key_id, outcome=outcome, account_id=ROLLUP_KEYS[key_id]))
    for start in range(0, len(rows), 90):  # appended and applied in uneven batches
        await append(engine, rows[start : start + 90])
        await catch_up(engine, PROJECTION, batch_size=rng.choice([7, 50, 500]))
    scopes: list[tuple[list[str], str | None]] = [
        (["key_a"], None),
        (["key_a", "key_b"], "acct_1"),
        (["key_b", "key_c"], None),  # not one account: minute rows throughout
    ]
    async with read_transaction(engine) as conn:
        for _ in range(12):
            since = T0 - HOUR_US + rng.randrange(3 * DAY_US)
            until = since + rng.randrange(MINUTE_US, 3 * DAY_US)
            for width in (MINUTE_US, HOUR_US, DAY_US):
                for keys, account_id in scopes:
                    buckets, busiest = expected_series(rows, set(keys), since, until, width)
                    assert await key_usage.usage_buckets(conn, keys, since, until, width) == buckets
                    peaks = await key_usage.busiest_minutes(
                        conn, keys, since, until, width, account_id=account_id
                    )
                    assert peaks == busiest
    assert (await verify_projection(engine, PROJECTION)).differences == ()  # rebuild equals live
