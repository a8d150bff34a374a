"""The lifecycle log on both backends: concurrency, commit order, hash chain, append-only triggers."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.db import create_engine
from reservekit.domain.events import AccountOpened, AccountPlanChanged, Metadata
from reservekit.events.chain import GENESIS_HASH
from reservekit.events.store import ConcurrencyConflict, SqlEventStore, StreamWrite
from reservekit.events.verify import verify_chain

META = Metadata(
    actor_account_id="acct_test", request_id="req_1", client_ip="203.0.113.9", user_agent="pytest"
)


def opened(account_id: str) -> AccountOpened:
    return AccountOpened(account_id=account_id, name=f"name {account_id}", plan="free")


async def test_append_assigns_gapless_positions_and_stream_versions(store: SqlEventStore) -> None:
    await store.append([StreamWrite("acct_a", 0, [opened("acct_a")])], META)
    await store.append([StreamWrite("acct_b", 0, [opened("acct_b")])], META)
    await store.append(
        [StreamWrite("acct_a", 1, [AccountPlanChanged(account_id="acct_a", plan="pro")])], META
    )

    everything = await store.read_after(0)
    assert [e.position for e in everything] == [1, 2, 3]
    stream = await store.read_stream("acct_a")
    assert [(e.stream_version, e.type) for e in stream] == [
        (1, "account_opened"),
        (2, "account_plan_changed"),
    ]
    assert stream[0].metadata == META
    assert await store.read_after(2) == everything[2:]


async def test_stale_expected_version_raises_and_writes_nothing(store: SqlEventStore) -> None:
    await store.append([StreamWrite("acct_a", 0, [opened("acct_a")])], META)
    with pytest.raises(ConcurrencyConflict) as info:
        # The first write would be fine; the second is stale: the whole append must be refused.
        await store.append(
            [StreamWrite("acct_b", 0, [opened("acct_b")]), StreamWrite("acct_a", 0, [opened("acct_a")])], META
        )
    assert info.value.actual == 1
    assert [e.stream_id for e in await store.read_after(0)] == ["acct_a"]


async def test_events_form_a_hash_chain_from_genesis(store: SqlEventStore, engine: AsyncEngine) -> None:
    for name in ("acct_a", "acct_b", "acct_c"):
        await store.append([StreamWrite(name, 0, [opened(name)])], META)
    recorded = await store.read_after(0)
    assert recorded[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in recorded[1:]] == [e.hash for e in recorded[:-1]]
    report = await verify_chain(engine)
    assert report.ok
    assert report.count == 3
    assert report.head_hash == recorded[-1].hash


@pytest.mark.parametrize("statement", ["UPDATE events SET type = 'x'", "DELETE FROM events"])
async def test_database_refuses_update_and_delete_on_the_log(
    store: SqlEventStore, engine: AsyncEngine, statement: str
) -> None:
    await store.append([StreamWrite("acct_a", 0, [opened("acct_a")])], META)
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    assert len(await store.read_after(0)) == 1


async def _tamper(engine: AsyncEngine, statement: str) -> None:
    """Go around the append-only triggers, as an attacker with table-owner rights could."""
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(text("DROP TRIGGER events_no_update"))
            await conn.execute(text("DROP TRIGGER events_no_delete"))
        else:
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
        await conn.execute(text(statement))


async def test_verify_names_the_first_rewritten_position(store: SqlEventStore, engine: AsyncEngine) -> None:
    for name in ("acct_a", "acct_b", "acct_c", "acct_d"):
        await store.append([StreamWrite(name, 0, [opened(name)])], META)
    await _tamper(engine, "UPDATE events SET data = replace(data, 'free', 'enterprise') WHERE position = 3")
    report = await verify_chain(engine)
    assert not report.ok
    assert report.first_bad_position == 3
    assert report.count == 2


async def test_verify_names_a_deleted_position(store: SqlEventStore, engine: AsyncEngine) -> None:
    for name in ("acct_a", "acct_b", "acct_c"):
        await store.append([StreamWrite(name, 0, [opened(name)])], META)
    await _tamper(engine, "DELETE FROM events WHERE position = 2")
    report = await verify_chain(engine)
    assert (report.ok, report.first_bad_position) == (False, 2)


async def test_concurrent_appends_to_one_stream_have_exactly_one_winner(store: SqlEventStore) -> None:
    await store.append([StreamWrite("acct_a", 0, [opened("acct_a")])], META)
    outcomes = await asyncio.gather(
        *(
            store.append(
                [StreamWrite("acct_a", 1, [AccountPlanChanged(account_id="acct_a", plan="pro")])], META
            )
            for _ in range(5)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(isinstance(o, ConcurrencyConflict) for o in outcomes if isinstance(o, BaseException))
    assert len(await store.read_stream("acct_a")) == 2


async def test_tailing_reader_sees_every_concurrent_append_once_in_order(postgres_url: str) -> None:
    """≥20 appenders on separate connections race a tailer; it must never skip a late-committing event."""
    database_url = postgres_url
    writers = [create_engine(database_url, pool_size=2) for _ in range(4)]
    reader_engine = create_engine(database_url, pool_size=2)
    stores = [SqlEventStore(e) for e in writers]
    reader = SqlEventStore(reader_engine)
    appenders, per_appender = 24, 10
    seen: list[int] = []
    done = asyncio.Event()

    async def append_many(index: int) -> None:
        target = stores[index % len(stores)]
        for n in range(per_appender):
            stream = f"acct_{index}_{n}"
            await target.append([StreamWrite(stream, 0, [opened(stream)])], META)

    async def tail() -> None:
        position = 0
        while True:
            finished = done.is_set()
            for recorded in await reader.read_after(position, limit=50):
                seen.append(recorded.position)
                position = recorded.position
            if finished and position == appenders * per_appender:
                return
            await asyncio.sleep(0)

    try:
        tailer = asyncio.create_task(tail())
        await asyncio.gather(*(append_many(i) for i in range(appenders)))
        done.set()
        await asyncio.wait_for(tailer, 30)
    finally:
        for e in (*writers, reader_engine):
            await e.dispose()
    assert seen == list(range(1, appenders * per_appender + 1))


async def test_a_batch_of_many_streams_reads_their_versions_at_once_and_keeps_the_chain(
    store: SqlEventStore, engine: AsyncEngine
) -> None:
    """A thousand-stream batch: one version query, one insert; order, versions and the chain hold."""
    await store.append(
        [StreamWrite(f"acct_{n:04d}", 0, [opened(f"acct_{n:04d}")]) for n in range(0, 600, 2)], META
    )
    writes = [
        StreamWrite(f"acct_{n:04d}", 1, [AccountPlanChanged(account_id=f"acct_{n:04d}", plan="pro")])
        if n % 2 == 0
        else StreamWrite(f"acct_{n:04d}", 0, [opened(f"acct_{n:04d}")])
        for n in range(600)
    ]
    recorded = await store.append(writes, META)

    assert [e.position for e in recorded] == list(range(301, 901))
    assert [(e.stream_id, e.stream_version) for e in recorded] == [
        (f"acct_{n:04d}", 2 if n % 2 == 0 else 1) for n in range(600)
    ]
    assert await store.read_after(300, limit=1000) == recorded
    assert (await verify_chain(engine)).ok

    stale = [
        StreamWrite("acct_new", 0, [opened("acct_new")]),
        StreamWrite("acct_0598", 1, [opened("acct_0598")]),
    ]
    with pytest.raises(ConcurrencyConflict):
        await store.append(stale, META)
    assert await store.head() == 900
