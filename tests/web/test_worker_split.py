"""``RESERVEKIT_RUN_WORKER``: a serving process without the worker records usage but applies no usage
projection; the worker's half of the runtime (what ``reservekit worker`` starts) applies them."""

from __future__ import annotations

import asyncio

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.clock import FakeClock
from reservekit.db import read_transaction
from reservekit.events.tables import projection_checkpoints
from reservekit.runtime import Runtime
from reservekit.settings import Settings, load_settings
from reservekit.usage.records import usage_head_in
from reservekit.web.app import create_app
from tests.web.conftest import make_account, serving


async def checkpoint(engine: AsyncEngine, name: str) -> int:
    async with read_transaction(engine) as conn:
        query = select(projection_checkpoints.c.position).where(projection_checkpoints.c.name == name)
        return int(await conn.scalar(query) or 0)


async def usage_head(engine: AsyncEngine) -> int:
    async with read_transaction(engine) as conn:
        return await usage_head_in(conn)


def test_run_worker_defaults_to_true_and_reads_its_variable() -> None:
    assert load_settings({}).run_worker is True
    assert load_settings({"RESERVEKIT_RUN_WORKER": "false"}).run_worker is False


async def test_serve_without_the_worker_leaves_usage_projections_to_the_worker(
    settings: Settings, clock: FakeClock
) -> None:
    serving_only = msgspec.structs.replace(settings, run_worker=False)
    app = create_app(serving_only, clock=clock)
    async with serving(app) as client:
        runtime: Runtime = app.state.runtime
        acme = await make_account(runtime, "Acme")
        for _ in range(3):
            assert (await client.get("/v1/services", headers=acme.headers)).status_code == 200
        # Writes still read their own writes: the lifecycle projections are caught up by the write.
        created = await client.post("/v1/api-keys", json={"name": "second"}, headers=acme.headers)
        assert created.status_code == 201
        listed = (await client.get("/v1/api-keys", headers=acme.headers)).json()["data"]
        assert created.json()["id"] in {key["id"] for key in listed}
        await runtime.usage.drain()
        # Many poll intervals: a projection runner in this process would have applied the rows by now.
        await asyncio.sleep(settings.poll_interval_seconds * 10)
        head = await usage_head(runtime.engine)
        assert head >= 5
        assert await checkpoint(runtime.engine, "key_usage") == 0
        assert await checkpoint(runtime.engine, "usage_flags") == 0

    worker = Runtime.build(serving_only, clock=clock)
    await worker.start(serve=False, work=True)
    try:
        async with asyncio.timeout(20):
            for name in ("key_usage", "usage_flags"):
                while await checkpoint(worker.engine, name) < head:  # noqa: ASYNC110 -- another task's work
                    await asyncio.sleep(0.05)
    finally:
        await worker.stop()
