"""The projection engine: rows and checkpoint in one transaction, resumption, wake-ups, rebuilds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import NamedTuple

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reservekit.background import PostgresListener, WakeUp
from reservekit.db import create_engine, is_sqlite, write_transaction
from reservekit.domain.events import AccountOpened, Metadata, RecordedEvent
from reservekit.events.store import NOTIFY_CHANNEL, SqlEventStore, StreamWrite
from reservekit.events.tables import projection_checkpoints
from reservekit.projecting import runner as runner_module
from reservekit.projecting.rebuild import rebuild_into, replace_live, verify_projection
from reservekit.projecting.runner import ProjectionRunner, apply_next_batch, catch_up, projection_status
from reservekit.projecting.sources import USAGE
from reservekit.projecting.spec import AnyProjection, Projection
from reservekit.usage.log import append_usage
from tests.integration.test_usage_log import row as usage_row

META = Metadata(source="test")


class CountTables(NamedTuple):
    counts: Table


def define(metadata: MetaData, suffix: str) -> CountTables:
    return CountTables(
        Table(
            f"t_counts{suffix}",
            metadata,
            Column("plan", String(20), primary_key=True),
            Column("n", Integer, nullable=False),
        )
    )


async def apply(conn: AsyncConnection, tables: CountTables, batch: Sequence[RecordedEvent]) -> None:
    counts = tables.counts
    for recorded in batch:
        assert isinstance(recorded.data, AccountOpened)
        plan = recorded.data.plan
        if plan == "explode":
            raise RuntimeError("projection bug")
        row = (await conn.execute(select(counts.c.n).where(counts.c.plan == plan))).scalar_one_or_none()
        if row is None:
            await conn.execute(counts.insert().values(plan=plan, n=1))
        else:
            await conn.execute(update(counts).where(counts.c.plan == plan).values(n=row + 1))


COUNTS: AnyProjection = Projection(name="test_counts", version=1, define=define, apply=apply)  # type: ignore[arg-type]


async def open_accounts(store: SqlEventStore, plans: Sequence[str], start: int = 0) -> None:
    for i, plan in enumerate(plans, start=start):
        await store.append(
            [StreamWrite(f"acct_{i}", 0, [AccountOpened(account_id=f"acct_{i}", name="n", plan=plan)])], META
        )


async def counts(engine: AsyncEngine, projection: AnyProjection = COUNTS, suffix: str = "") -> dict[str, int]:
    table = projection.tables(suffix)[0] if suffix else projection.live[0]
    async with engine.connect() as conn:
        return {row.plan: row.n for row in await conn.execute(select(table))}


async def checkpoint(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        value = await conn.scalar(
            select(projection_checkpoints.c.position).where(projection_checkpoints.c.name == "test_counts")
        )
    return int(value or 0)


@pytest.fixture
async def runner(engine: AsyncEngine) -> ProjectionRunner:
    runner = ProjectionRunner(engine, [COUNTS], WakeUp(), poll_interval=0.05)
    await runner.setup()
    return runner


async def test_runner_applies_rows_and_moves_the_checkpoint(
    store: SqlEventStore, engine: AsyncEngine, runner: ProjectionRunner
) -> None:
    await open_accounts(store, ["free", "pro", "free"])
    assert await runner.run_all_once() == 3
    assert await counts(engine) == {"free": 2, "pro": 1}
    assert await checkpoint(engine) == 3
    assert await runner.run_all_once() == 0  # nothing counted twice


async def test_a_crash_mid_batch_leaves_rows_and_checkpoint_untouched(
    store: SqlEventStore, engine: AsyncEngine, runner: ProjectionRunner
) -> None:
    await open_accounts(store, ["free", "pro", "explode"])
    with pytest.raises(RuntimeError, match="projection bug"):
        await apply_next_batch(engine, COUNTS)
    # "free" and "pro" were written in the failed transaction: rolled back with the checkpoint.
    assert await counts(engine) == {}
    assert await checkpoint(engine) == 0
    # Resume one event at a time: exactly the events before the bad one, each once.
    assert await apply_next_batch(engine, COUNTS, batch_size=2) == 2
    assert await counts(engine) == {"free": 1, "pro": 1}
    assert await checkpoint(engine) == 2


async def test_two_runners_on_one_database_never_double_count(
    store: SqlEventStore, database_url: str, runner: ProjectionRunner
) -> None:
    other_engine = create_engine(database_url)
    try:
        await open_accounts(store, ["free"] * 30)
        await asyncio.gather(
            catch_up(store.engine, COUNTS, batch_size=3), catch_up(other_engine, COUNTS, batch_size=3)
        )
        assert await counts(store.engine) == {"free": 30}
    finally:
        await other_engine.dispose()


async def test_background_runner_resumes_after_the_database_drops_its_connections(
    store: SqlEventStore, engine: AsyncEngine, runner: ProjectionRunner, backend: str
) -> None:
    runner.start()
    try:
        await open_accounts(store, ["free", "free"])
        await _until(lambda: counts(engine), {"free": 2})
        if backend == "postgres":
            async with engine.connect() as conn:
                await conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
        else:
            await engine.dispose()  # every pooled connection closed under the runner
        await open_accounts(store, ["pro", "pro"], start=2)
        await _until(lambda: counts(engine), {"free": 2, "pro": 2})
    finally:
        await runner.stop()


async def test_listen_notify_wakes_another_replica_long_before_its_poll(postgres_url: str) -> None:
    writer_engine, reader_engine = create_engine(postgres_url), create_engine(postgres_url)
    wakeup = WakeUp()
    listener = PostgresListener(postgres_url, NOTIFY_CHANNEL, wakeup)
    runner = ProjectionRunner(reader_engine, [COUNTS], wakeup, poll_interval=60)
    try:
        await runner.setup()
        listener.start()
        await asyncio.wait_for(listener.connected.wait(), 5)
        runner.start()
        await asyncio.sleep(0.1)
        await open_accounts(SqlEventStore(writer_engine), ["free"])
        await _until(lambda: counts(reader_engine), {"free": 1}, within=2)
        # The listener's connection is killed: it reconnects and the next event still wakes the runner.
        # Only this test's database: other runs on the same server keep their listeners.
        async with writer_engine.connect() as conn:
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                )
            )
        assert killed == 1
        await asyncio.sleep(0.5)
        await asyncio.wait_for(listener.connected.wait(), 5)
        await open_accounts(SqlEventStore(writer_engine), ["pro"], start=1)
        await _until(lambda: counts(reader_engine), {"free": 1, "pro": 1}, within=2)
    finally:
        await runner.stop()
        await listener.stop()
        await writer_engine.dispose()
        await reader_engine.dispose()


async def test_verify_matches_a_healthy_projection_and_catches_a_corrupted_one(
    store: SqlEventStore, engine: AsyncEngine, runner: ProjectionRunner
) -> None:
    await open_accounts(store, ["free", "pro", "free"])
    await runner.run_all_once()
    assert (await verify_projection(engine, COUNTS)).differences == ()
    async with write_transaction(engine) as conn:
        await conn.execute(update(COUNTS.live.counts).where(COUNTS.live.counts.c.plan == "pro").values(n=7))
    result = await verify_projection(engine, COUNTS)
    assert result.differences
    assert "pro" in result.differences[0]


async def test_rebuild_until_a_position_leaves_live_tables_alone(
    store: SqlEventStore, engine: AsyncEngine, runner: ProjectionRunner
) -> None:
    await open_accounts(store, ["free", "pro", "pro", "pro"])
    await runner.run_all_once()
    result = await rebuild_into(engine, COUNTS, suffix="__asof_2", until=2)
    assert result.events_applied == 2
    assert await counts(engine, suffix="__asof_2") == {"free": 1, "pro": 1}
    assert await counts(engine) == {"free": 1, "pro": 3}


async def test_replace_live_swaps_in_a_rebuild_and_keeps_the_checkpoint(
    store: SqlEventStore, engine: AsyncEngine, runner: ProjectionRunner
) -> None:
    await open_accounts(store, ["free", "pro"])
    await runner.run_all_once()
    async with write_transaction(engine) as conn:
        await conn.execute(update(COUNTS.live.counts).values(n=99))
    await replace_live(engine, COUNTS)
    assert await counts(engine) == {"free": 1, "pro": 1}
    assert await checkpoint(engine) == 2
    await replace_live(engine, COUNTS)  # a second swap must not collide with the first one's names
    await open_accounts(store, ["free"], start=2)
    await runner.run_all_once()
    assert await counts(engine) == {"free": 2, "pro": 1}


async def test_a_new_projection_version_replays_from_the_start(
    store: SqlEventStore, engine: AsyncEngine, runner: ProjectionRunner
) -> None:
    await open_accounts(store, ["free", "pro"])
    await runner.run_all_once()
    async with write_transaction(engine) as conn:
        await conn.execute(update(COUNTS.live.counts).values(n=50))
    bumped: AnyProjection = Projection(name="test_counts", version=2, define=define, apply=apply)  # type: ignore[arg-type]
    upgraded = ProjectionRunner(engine, [bumped], WakeUp())
    await upgraded.setup()
    await upgraded.run_all_once()
    assert await counts(engine) == {"free": 1, "pro": 1}
    [status] = await projection_status(engine, [bumped])
    assert (status.checkpoint, status.lag) == (2, 0)


async def _until(probe, expected, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if value == expected:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still {value!r}, expected {expected!r}")
        await asyncio.sleep(0.02)


def define_other(metadata: MetaData, suffix: str) -> CountTables:
    return define(metadata, "_b" + suffix)


OTHER_COUNTS: AnyProjection = Projection(name="test_counts_b", version=1, define=define_other, apply=apply)  # type: ignore[arg-type]


async def test_read_your_writes_moves_each_projection_from_its_own_checkpoint_in_one_transaction(
    store: SqlEventStore, engine: AsyncEngine
) -> None:
    """``wait_until`` applies, for each projection behind, only what lies after its own checkpoint, and
    moves every moved checkpoint (one statement) and no other."""
    runner = ProjectionRunner(engine, [COUNTS, OTHER_COUNTS], WakeUp(), poll_interval=0.05)
    await runner.setup()
    told: list[str] = []
    runner.on_applied.append(lambda: told.append("applied"))
    await open_accounts(store, ["free", "pro"])
    await apply_next_batch(engine, COUNTS, batch_size=1)  # COUNTS at 1, OTHER_COUNTS at 0
    await open_accounts(store, ["free"], start=2)
    await runner.wait_until(3)
    # Those listening for applied rows (the webhook dispatcher) hear of it, as from a background pass.
    assert told == ["applied"]
    assert await counts(engine) == {"free": 2, "pro": 1}
    assert await counts(engine, OTHER_COUNTS) == {"free": 2, "pro": 1}
    async with engine.connect() as conn:
        rows = {
            row.name: (row.position, row.updated_at_us)
            for row in await conn.execute(select(projection_checkpoints))
        }
    assert rows["test_counts"][0] == rows["test_counts_b"][0] == 3
    stamped = rows["test_counts"][1]
    await runner.wait_until(3)  # nothing behind: no checkpoint written again
    await runner.wait_until(2)
    async with engine.connect() as conn:
        again = await conn.scalar(
            select(projection_checkpoints.c.updated_at_us).where(
                projection_checkpoints.c.name == "test_counts"
            )
        )
    assert again == stamped
    assert await counts(engine) == {"free": 2, "pro": 1}  # nothing applied twice
    assert told == ["applied"]  # and nothing announced twice


async def test_a_pass_locks_only_the_checkpoints_of_projections_behind_their_log(
    store: SqlEventStore, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage_counts: AnyProjection = Projection(  # follows the usage log, which stays empty here
        name="test_usage_counts", version=1, define=define, apply=apply, source=USAGE
    )
    runner = ProjectionRunner(engine, [COUNTS, usage_counts], WakeUp())
    await runner.setup()
    locked: list[str] = []
    real = runner_module.apply_next_batch

    async def counting(engine: AsyncEngine, projection: AnyProjection, **kwargs: object) -> int:
        locked.append(projection.name)
        return await real(engine, projection, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner_module, "apply_next_batch", counting)
    assert await runner.run_all_once() == 0
    assert locked == []  # both at their heads: one read, no checkpoint lock
    await open_accounts(store, ["free"])
    assert await runner.run_all_once() == 1
    assert locked == ["test_counts"]
    assert await runner.run_all_once() == 0
    assert locked == ["test_counts"]


async def test_a_pass_applies_a_usage_flush_in_batches_sized_for_the_backend(engine: AsyncEngine) -> None:
    """One usage flush (up to 2,000 rows) is one transaction per projection on PostgreSQL, where each
    transaction's fixed work competed with serving requests; SQLite keeps batches of 500, which hold
    its one write lock for less time (``runner.live_batch_size``)."""
    sizes: list[int] = []

    async def record(conn: AsyncConnection, tables: CountTables, batch: Sequence[object]) -> None:
        sizes.append(len(batch))

    usage_batches: AnyProjection = Projection(  # type: ignore[arg-type]
        name="test_usage_batches", version=1, define=define, apply=record, source=USAGE
    )
    runner = ProjectionRunner(engine, [usage_batches], WakeUp())
    await runner.setup()
    await append_usage(engine, [usage_row(n) for n in range(2_000)], recorded_at_us=1_000_000)
    assert await runner.run_all_once() == 2_000
    assert sizes == ([500] * 4 if is_sqlite(engine) else [2_000])
