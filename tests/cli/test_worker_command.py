"""``reservekit worker`` as an operator runs it: a real process that applies the usage projections
the serving processes (``RESERVEKIT_RUN_WORKER=false``) leave to it, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import select

from reservekit.db import create_engine, read_transaction
from reservekit.events.tables import projection_checkpoints
from reservekit.usage.log import append_usage
from reservekit.usage.records import UsageRecord
from tests.cli.test_cli import env, run  # noqa: F401 -- the fixture, reused

ROWS = 40


def usage_row(n: int) -> UsageRecord:
    return UsageRecord(
        occurred_at_us=1_780_000_000_000_000 + n,
        request_id=f"req_worker_{n}",
        key_id="key_w",
        account_id="acct_w",
        client_ip="198.51.100.7",
        origin=None,
        method="GET",
        route="/v1/services",
        status=200,
        outcome="ok",
        detail=None,
        latency_us=100,
    )


async def key_usage_checkpoint(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with read_transaction(engine) as conn:
            query = select(projection_checkpoints.c.position).where(
                projection_checkpoints.c.name == "key_usage"
            )
            return int(await conn.scalar(query) or 0)
    finally:
        await engine.dispose()


async def write_usage(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await append_usage(engine, [usage_row(n) for n in range(ROWS)], recorded_at_us=1_780_000_000_000_000)
    finally:
        await engine.dispose()


def test_worker_applies_usage_rows_and_stops_on_sigterm(env: dict[str, str], database_url: str) -> None:  # noqa: F811
    assert run(env, "migrate").returncode == 0
    assert run(env, "projections", "status").returncode == 0  # creates the projections' tables
    asyncio.run(write_usage(database_url))
    assert asyncio.run(key_usage_checkpoint(database_url)) == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "reservekit.cli.main", "worker"],
        env={**env, "RESERVEKIT_POLL_INTERVAL_SECONDS": "0.1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while asyncio.run(key_usage_checkpoint(database_url)) < ROWS and time.monotonic() < deadline:
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            time.sleep(0.1)
        assert asyncio.run(key_usage_checkpoint(database_url)) == ROWS
    finally:
        os.kill(worker.pid, signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert out == ""  # nothing on stdout: logs and the banner go to stderr
    assert "Traceback" not in err
