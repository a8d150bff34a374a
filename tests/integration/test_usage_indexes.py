"""PostgreSQL finds a key's or an account's usage rows through the log's hashed id indexes (0011).

The audit API and the dashboard page through one key's or one account's rows, newest first. Without a
usable index PostgreSQL walks the whole log backwards and filters (97 ms at 1,000,000 rows before
0009). Since 0011 the indexes key a hash of the id, which only a query that names the hash can use:
``usage.records.id_matches`` spells it, and these plans show that every id filter of ``read_usage``
reaches an index on the hash.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.audit.trail import UsageFilter, read_usage, usage_query
from reservekit.db import create_engine
from reservekit.usage.log import append_usage
from reservekit.usage.records import UsageRecord

KEYS = [f"key_{n:022d}" for n in range(40)]


def usage(n: int) -> UsageRecord:
    key = KEYS[n % len(KEYS)]
    return UsageRecord(
        occurred_at_us=1_764_374_400_000_000 + n * 1_000_000, request_id=f"req_{n:016x}", key_id=key,
        account_id="acct_" + key[-22:], client_ip="203.0.113.1", origin=None, method="GET",
        route="/v1/services", status=429 if n % 7 == 0 else 200,
        outcome="rate_limited" if n % 7 == 0 else "ok", detail=None, latency_us=900,
    )  # fmt: skip


@pytest.fixture
async def pg_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    rows = [usage(n) for n in range(4_000)]
    await append_usage(engine, rows, recorded_at_us=rows[-1].occurred_at_us)
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE usage_log"))
    yield engine
    await engine.dispose()


async def plan_of(engine: AsyncEngine, f: UsageFilter) -> str:
    compiled = usage_query(f, "postgresql").compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    async with engine.begin() as conn:
        # A few thousand rows fit in a handful of pages, where a sequential scan wins on cost. Priced
        # out, PostgreSQL still scans when no index fits the filter, which is what this test catches.
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(row[0] for row in await conn.execute(text(f"EXPLAIN {compiled}")))


@pytest.mark.parametrize(
    "f",
    [
        UsageFilter(key_id=KEYS[7], newest_first=True, limit=10),
        UsageFilter(account_id="acct_" + KEYS[7][-22:], newest_first=True, limit=10),
        UsageFilter(account_id="acct_" + KEYS[7][-22:], outcome="rate_limited", newest_first=True, limit=10),
        UsageFilter(key_id=KEYS[7], account_id="acct_" + KEYS[7][-22:], after=100, limit=10),
    ],
    ids=["key", "account", "account-and-outcome", "key-and-account-oldest-first"],
)
async def test_every_id_filter_reads_through_a_hashed_id_index(
    pg_engine: AsyncEngine, f: UsageFilter
) -> None:
    plan = await plan_of(pg_engine, f)
    filtered = [column for column, value in (("key_id", f.key_id), ("account_id", f.account_id)) if value]
    # An index is entered at an id's hash (an index condition), not scanned whole and filtered.
    # reservekit_id_hash is plain SQL: PostgreSQL inlines it, in the index and in the query alike.
    entered = [
        c
        for c in filtered
        if re.search(rf"Index Cond: \(\((reservekit_id_hash|hashtextextended)\(\({c}\)", plan)
    ]
    assert entered, plan
    assert "Seq Scan" not in plan, plan
    rows = await read_usage(pg_engine, f)
    assert len(rows) == 10
    for r in rows:
        assert f.key_id in (None, r.key_id)
        assert f.account_id in (None, r.account_id)
        assert f.outcome in (None, r.outcome)
    positions = [r.position for r in rows]
    assert positions == sorted(positions, reverse=f.newest_first)
