"""Lifecycle append throughput and single-key create latency on PostgreSQL (issue 14, target 3).

1. ``SqlEventStore.append`` with ``--batch`` new key streams per call (one ``KeyCreated`` each), until
   ``--events`` are written: events per second (target >= 20,000).
2. ``CreateKey`` through the application service, one at a time, ``--creates`` times, with the
   read-your-writes wait for the projections included: p50 and p99 in ms (target p50 <= 5 ms).

    .venv/bin/python tests/benchmarks/bench_lifecycle.py [--events 50000] [--batch 1000] [--creates 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from _scratch import DEFAULT_PG, Row, print_rows, row, scratch_database

from reservekit.cli.context import cli_metadata
from reservekit.db import create_engine
from reservekit.domain.events import AccountOpened, KeyCreated, Metadata
from reservekit.events.store import SqlEventStore
from reservekit.logging import configure_logging
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.usecases.commands import CreateKey, OpenAccount
from reservekit.usecases.ports import StreamWrite

APPEND_TARGET = 20_000
CREATE_P50_TARGET_MS = 5.0


def key_write(n: int) -> StreamWrite:
    key_id = f"key_b{n:010d}"
    event = KeyCreated(
        key_id=key_id,
        account_id="acct_bench",
        key_hash=f"{n:064x}",
        prefix="sk_rsv_",
        last4=f"{n % 10_000:04d}",
        name=f"bench {n}",
        scopes=("services:read",),
    )
    return StreamWrite(f"key-{key_id}", 0, [event])


async def measure_append(url: str, events: int, batch: int) -> float:
    engine = create_engine(url)
    store = SqlEventStore(engine)
    metadata = Metadata(source="cli", actor_os_user="bench")
    try:
        await store.append([StreamWrite("account-acct_bench", 0, [_account()])], metadata)
        began = time.perf_counter()
        for start in range(0, events, batch):
            await store.append([key_write(n) for n in range(start, min(start + batch, events))], metadata)
        return events / (time.perf_counter() - began)
    finally:
        await engine.dispose()


def _account() -> AccountOpened:
    return AccountOpened(account_id="acct_bench", name="bench", plan="pro")


async def measure_create(url: str, creates: int, data_dir: Path) -> list[float]:
    settings = Settings(data_dir=data_dir, database_url=url, key_pepper="0123456789abcdef" * 4)
    runtime = Runtime.build(settings)
    await runtime.start(background=False)
    try:
        metadata = cli_metadata()
        opened = await runtime.application.execute(OpenAccount(name="bench create"), metadata)
        timings: list[float] = []
        for n in range(creates + 20):
            began = time.perf_counter()
            await runtime.application.execute(
                CreateKey(account_id=opened.account.account_id, name=f"k{n}"), metadata
            )
            if n >= 20:  # warm-up: connection pool, statement caches
                timings.append((time.perf_counter() - began) * 1000)
        return timings
    finally:
        await runtime.stop()


async def run(
    *, events: int = 50_000, batch: int = 1000, creates: int = 300, pg: str = DEFAULT_PG
) -> list[Row]:
    async with scratch_database(pg, "bench_lifecycle") as url:
        rate = await measure_append(url, events, batch)
        import tempfile

        with tempfile.TemporaryDirectory() as data_dir:
            timings = sorted(await measure_create(url, creates, Path(data_dir)))
    p50 = statistics.median(timings)
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    return [
        row(f"lifecycle append, {batch} keys per call ({events:,} events)", rate, "ev/s",
            f">= {APPEND_TARGET:,}", rate >= APPEND_TARGET),
        row(f"single-key create p50 (application, {creates} creates, PG)", p50, "ms",
            f"<= {CREATE_P50_TARGET_MS}", p50 <= CREATE_P50_TARGET_MS),
        row("single-key create p99", p99, "ms"),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--pg", default=DEFAULT_PG)
    args = parser.parse_args()
    configure_logging(level="WARNING", json=False)
    rows = asyncio.run(run(events=args.events, batch=args.batch, creates=args.creates, pg=args.pg))
    print_rows(rows)
    return 0 if all(r["ok"] is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
