"""key_usage's SQL fold against a plain-Python model of what it must hold, on random logs cut at random.

The fold runs in the database (``projections/_key_usage_fold.py``); the model below is the definition in
a dozen lines of dictionaries, computed over the whole log at once. Every table must equal the model
whether the log was applied live in uneven batches, rebuilt in ranges, or rebuilt as of a position.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from projections import key_usage
from projections._key_usage_fold import fold_statements
from projections.key_usage import KeyUsageTables
from reservekit.background import WakeUp
from reservekit.clock import HOUR_US, MINUTE_US
from reservekit.db import create_engine, read_transaction
from reservekit.projecting import rebuild
from reservekit.projecting.rebuild import rebuild_into
from reservekit.projecting.runner import ProjectionRunner, catch_up
from reservekit.projecting.spec import AnyProjection
from reservekit.usage.log import append_usage
from reservekit.usage.records import UsageRecord

PROJECTION: AnyProjection = key_usage.PROJECTION  # type: ignore[assignment]
T0 = 1_780_000_000_000_000  # 2026-05-28, a minute boundary plus nothing in particular
INSERT_INTO = re.compile(r"INSERT INTO (\w+)")
KEYS = {"key_a": "acct_1", "key_b": "acct_1", "key_c": "acct_2", "key_d": None}


def random_log(rng: random.Random, n: int) -> list[UsageRecord]:
    """Requests crowded into few minutes and instants (ties on time), out of time order, some keyless."""
    rows = []
    for i in range(n):
        key_id = rng.choice([*KEYS, None])
        at = (
            T0
            + rng.randrange(6) * HOUR_US
            + rng.choice([0, 1, 2, 59]) * MINUTE_US
            + rng.choice([0, 5, 999_999])
        )
        rows.append(
            UsageRecord(
                occurred_at_us=at,
                request_id=f"req_{i}",
                key_id=key_id,
                account_id=KEYS[key_id] if key_id else None,
                client_ip=rng.choice(["192.0.2.1", "192.0.2.2", "198.51.100.7"]),
                origin=rng.choice([None, None, "https://a.example", "https://b.example"]),
                method="GET",
                route="/v1/services",
                status=200,
                outcome=rng.choice(["ok", "ok", "rate_limited", "revoked_key"]),
                detail=None,
                latency_us=100,
            )
        )
    return rows


def model(log: list[UsageRecord]) -> dict[str, set[tuple[Any, ...]]]:
    """What each table must hold after folding ``log`` (positions assigned), by definition."""
    minutes: Counter[tuple[Any, ...]] = Counter()
    hours: Counter[tuple[Any, ...]] = Counter()
    totals: Counter[tuple[str, int]] = Counter()
    last: dict[str, UsageRecord] = {}
    first: dict[tuple[str, str, str], int] = {}
    for row in log:
        if row.key_id is None:
            continue
        at, key = row.occurred_at_us, row.key_id
        minute = at - at % MINUTE_US
        minutes[(key, minute, row.outcome)] += 1
        hours[(key, at - at % HOUR_US, row.outcome)] += 1
        totals[(f"key:{key}", minute)] += 1
        if row.account_id is not None:
            totals[(f"account:{row.account_id}", minute)] += 1
        seen = last.get(key)
        if seen is None or (at, row.position) > (seen.occurred_at_us, seen.position):
            last[key] = row
        for kind, value in (("ip", row.client_ip), ("origin", row.origin)):
            if value is not None:
                first[(key, kind, value)] = min(first.get((key, kind, value), at), at)
    peaks: dict[tuple[str, int], int] = {}
    for (scope, minute), n in totals.items():
        hour = (scope, minute - minute % HOUR_US)
        peaks[hour] = max(peaks.get(hour, 0), n)
    return {
        "minutes": {(*k, n) for k, n in minutes.items()},
        "hours": {(*k, n) for k, n in hours.items()},
        "minute_totals": {(*k, n) for k, n in totals.items()},
        "hour_peaks": {(*k, n) for k, n in peaks.items()},
        "activity": {(k, r.account_id, r.occurred_at_us, r.client_ip, r.origin) for k, r in last.items()},
        "first_seen": {(*k, at) for k, at in first.items()},
    }


async def stored(engine: AsyncEngine, tables: KeyUsageTables) -> dict[str, set[tuple[Any, ...]]]:
    async with read_transaction(engine) as conn:
        return {
            name: {tuple(row) for row in await conn.execute(select(table))}
            for name, table in zip(KeyUsageTables._fields, tables, strict=True)
        }


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_live_batches_and_rebuild_ranges_equal_the_model(
    engine: AsyncEngine, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    runner = ProjectionRunner(engine, [PROJECTION], WakeUp())
    await runner.setup()
    log: list[UsageRecord] = []
    for start in range(0, 600, 150):  # appended in chunks, applied in uneven batches as they arrive
        log += await append_usage(engine, random_log(rng, 150), recorded_at_us=T0 + start)
        await catch_up(engine, PROJECTION, batch_size=rng.choice([1, 7, 64, 500]))
    expected = model(log)
    assert await stored(engine, PROJECTION.live) == expected

    monkeypatch.setattr(rebuild, "RANGE_SIZE", rng.choice([13, 100, 1000]))
    result = await rebuild_into(engine, PROJECTION, suffix="__ranges")
    assert result.events_applied == len(log)
    assert await stored(engine, PROJECTION.tables("__ranges")) == expected

    middle = log[len(log) // 2].position
    await rebuild_into(engine, PROJECTION, suffix="__half", until=middle)
    assert await stored(engine, PROJECTION.tables("__half")) == model(log[: len(log) // 2 + 1])


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_two_lanes_write_disjoint_tables_and_together_all_of_them(dialect: str) -> None:
    tables = PROJECTION.tables("__lanes")
    lanes = fold_statements(dialect, tables, bounded=False)  # type: ignore[arg-type]
    compiler = {"postgresql": postgresql.dialect(), "sqlite": sqlite.dialect()}[dialect]
    written = [
        {name for statement in lane for name in INSERT_INTO.findall(str(statement.compile(dialect=compiler)))}
        for lane in lanes
    ]
    assert written[0].isdisjoint(written[1])
    assert written[0] | written[1] == {table.name for table in tables}


async def test_a_failing_lane_stops_the_rebuild_and_the_other_lane(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(postgres_url)
    try:
        await append_usage(engine, random_log(random.Random(7), 200), recorded_at_us=T0)
        monkeypatch.setattr(rebuild, "RANGE_SIZE", 10)
        counted: list[int] = []

        async def counts(conn: AsyncConnection, tables: Any, after: int, through: int) -> None:
            counted.append(through)
            await asyncio.sleep(0.01)  # slower than the failing lane: still running when it fails

        async def fails(conn: AsyncConnection, tables: Any, after: int, through: int) -> None:
            if through >= 30:
                raise RuntimeError("lane failed")

        failing = dataclasses.replace(PROJECTION, range_lanes=(counts, fails))
        with pytest.raises(RuntimeError, match="lane failed"):
            await rebuild_into(engine, failing, suffix="__failing")
        stopped_at = len(counted)
        await asyncio.sleep(0.1)
        assert len(counted) == stopped_at < 20  # cancelled, not left running to the end of the log
    finally:
        await engine.dispose()
