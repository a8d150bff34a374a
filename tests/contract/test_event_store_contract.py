"""One contract, three event stores: in memory, SQLite and PostgreSQL.

Whatever a handler may rely on is stated here once and checked against every implementation of the
``usecases.ports.EventStore`` port: gapless positions in commit order, stream versions, optimistic
concurrency that writes nothing, atomic multi-stream appends, reads after a position, streams, the
hash chain, and the on-append hook.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from itertools import pairwise
from pathlib import Path

import pytest

from reservekit.db import create_engine
from reservekit.domain.events import AccountOpened, AccountPlanChanged, Metadata, RecordedEvent
from reservekit.events.chain import GENESIS_HASH
from reservekit.events.memory import InMemoryEventStore
from reservekit.events.store import SqlEventStore
from reservekit.usecases.ports import ConcurrencyConflict, EventStore, StreamWrite
from tests.conftest import _fresh_database

META = Metadata(actor_account_id="acct_contract", request_id="req_contract", source="cli")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None for the in-memory store; otherwise a fresh migrated database (see tests/conftest.py)."""
    if request.param == "memory":
        yield None
    else:
        yield from _fresh_database(request.param, request, tmp_path)


@pytest.fixture
async def store(store_database: str | None) -> AsyncIterator[EventStore]:
    if store_database is None:
        yield InMemoryEventStore()
        return
    engine = create_engine(store_database)
    try:
        yield SqlEventStore(engine)
    finally:
        await engine.dispose()


def opened(stream_id: str) -> StreamWrite:
    return StreamWrite(stream_id, 0, [AccountOpened(account_id=stream_id, name=stream_id, plan="free")])


def plan_changed(stream_id: str, expected_version: int, plan: str = "pro") -> StreamWrite:
    return StreamWrite(stream_id, expected_version, [AccountPlanChanged(account_id=stream_id, plan=plan)])


async def test_an_empty_store_has_head_zero_and_no_streams(store: EventStore) -> None:
    assert await store.head() == 0
    assert await store.read_after(0) == []
    assert await store.read_stream("acct_nobody") == []


async def test_append_numbers_positions_from_one_and_versions_per_stream(store: EventStore) -> None:
    first = await store.append([opened("acct_a")], META)
    second = await store.append([opened("acct_b"), plan_changed("acct_a", 1)], META)
    assert [(e.position, e.stream_id, e.stream_version) for e in [*first, *second]] == [
        (1, "acct_a", 1),
        (2, "acct_b", 1),
        (3, "acct_a", 2),
    ]
    assert await store.head() == 3
    assert all(e.metadata == META for e in [*first, *second])


async def test_what_append_returns_is_what_reads_return(store: EventStore) -> None:
    recorded = [*await store.append([opened("acct_a")], META), *await store.append([opened("acct_b")], META)]
    assert await store.read_after(0) == recorded


async def test_a_stale_version_raises_and_writes_nothing_even_beside_a_good_write(store: EventStore) -> None:
    await store.append([opened("acct_a")], META)
    with pytest.raises(ConcurrencyConflict) as conflict:
        await store.append([opened("acct_b"), plan_changed("acct_a", 0)], META)
    assert (conflict.value.stream_id, conflict.value.expected, conflict.value.actual) == ("acct_a", 0, 1)
    assert await store.head() == 1
    assert await store.read_stream("acct_b") == []


async def test_a_write_of_no_events_guards_a_stream_it_read_without_touching_it(store: EventStore) -> None:
    """A decision that read another stream (the last-owner rule) passes it as a guard: no event, and a
    conflict if that stream moved since, so the decision's own events are not written either."""
    await store.append([opened("acct_a"), opened("acct_b")], META)
    guarded = await store.append([plan_changed("acct_a", 1), StreamWrite("acct_b", 1, [])], META)
    assert [(e.stream_id, e.position) for e in guarded] == [("acct_a", 3)]
    assert len(await store.read_stream("acct_b")) == 1
    await store.append([plan_changed("acct_b", 1)], META)
    with pytest.raises(ConcurrencyConflict) as conflict:
        await store.append([plan_changed("acct_a", 2, "free"), StreamWrite("acct_b", 1, [])], META)
    assert (conflict.value.stream_id, conflict.value.expected, conflict.value.actual) == ("acct_b", 1, 2)
    assert await store.head() == 4


async def test_racing_writers_on_one_stream_have_exactly_one_winner(store: EventStore) -> None:
    await store.append([opened("acct_a")], META)
    outcomes = await asyncio.gather(
        *(store.append([plan_changed("acct_a", 1, plan)], META) for plan in ("pro", "free", "enterprise")),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(o, ConcurrencyConflict) for o in outcomes if isinstance(o, BaseException))
    assert [e.stream_version for e in await store.read_stream("acct_a")] == [1, 2]


async def test_concurrent_appends_get_gapless_positions_in_commit_order(store: EventStore) -> None:
    await asyncio.gather(*(store.append([opened(f"acct_{n}")], META) for n in range(12)))
    log = await store.read_after(0)
    assert [e.position for e in log] == list(range(1, 13))
    assert len({e.stream_id for e in log}) == 12
    _assert_chained(log)


async def test_read_after_honours_position_limit_and_until(store: EventStore) -> None:
    for n in range(6):
        await store.append([opened(f"acct_{n}")], META)
    assert [e.position for e in await store.read_after(2)] == [3, 4, 5, 6]
    assert [e.position for e in await store.read_after(2, limit=2)] == [3, 4]
    assert [e.position for e in await store.read_after(2, until=4)] == [3, 4]
    assert await store.read_after(6) == []


async def test_read_stream_holds_only_that_stream_in_version_order(store: EventStore) -> None:
    await store.append([opened("acct_a")], META)
    await store.append([opened("acct_b")], META)
    await store.append([plan_changed("acct_a", 1, "pro")], META)
    await store.append([plan_changed("acct_a", 2, "enterprise")], META)
    stream = await store.read_stream("acct_a")
    assert [(e.stream_version, e.type) for e in stream] == [
        (1, "account_opened"),
        (2, "account_plan_changed"),
        (3, "account_plan_changed"),
    ]
    assert {e.stream_id for e in stream} == {"acct_a"}


async def test_events_are_hash_chained_from_genesis(store: EventStore) -> None:
    for name in ("acct_a", "acct_b", "acct_c"):
        await store.append([opened(name)], META)
    log = await store.read_after(0)
    assert log[0].prev_hash == GENESIS_HASH
    _assert_chained(log)


async def test_listeners_see_each_committed_append_and_no_refused_one(store: EventStore) -> None:
    seen: list[list[int]] = []
    store.on_append(lambda batch: seen.append([e.position for e in batch]))
    await store.append([opened("acct_a"), opened("acct_b")], META)
    with pytest.raises(ConcurrencyConflict):
        await store.append([opened("acct_a")], META)
    await store.append([plan_changed("acct_a", 1)], META)
    assert seen == [[1, 2], [3]]


def _assert_chained(log: Sequence[RecordedEvent]) -> None:
    for before, after in pairwise(log):
        assert after.prev_hash == before.hash
    assert len({e.hash for e in log}) == len(log)
