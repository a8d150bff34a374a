"""Usage projection rebuild (SPEC §8, §11): key_usage replayed from the usage log, rows per second.

Creates a scratch PostgreSQL database ``bench_usage_<pid>``, migrates it, appends synthetic usage rows
with ``append_usage`` (in batches, as the usage writer does), then times
``rebuild_into(engine, key_usage.PROJECTION, suffix="__bench")`` with a progress bar and prints rows/s
(target >= 50,000). The database is dropped at the end, also on failure or Ctrl-C.

The synthetic log: ``--keys`` keys (2,000) with Zipf-like popularity, ``--ips`` client IPs (50), each key
seen from a few of them, about a third of the keys used from a browser (an Origin), outcomes mostly
``ok`` with the refusals a live authority sees, and ~6 % of rows without a key (missing / malformed /
invalid secrets). Requests are spread evenly over ``--hours`` (24) of event time.

    .venv/bin/python tests/benchmarks/bench_usage_rebuild.py [--rows 1000000] [--batch-size 20000] \
        [--pg postgresql://postgres@127.0.0.1:5432] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import func, select

from projections import key_usage
from reservekit.db import create_engine
from reservekit.migrate import upgrade_to_head_async
from reservekit.projecting.rebuild import drop_tables, rebuild_into
from reservekit.usage.log import append_usage
from reservekit.usage.records import UsageRecord

TARGET_ROWS_PER_SECOND = 50_000
START_US = 1_780_000_000_000_000  # 2026-05-28
OUTCOMES = (
    ("ok", 0.86, 200),
    ("rate_limited", 0.04, 429),
    ("scope_denied", 0.02, 403),
    ("origin_mismatch", 0.01, 403),
    ("revoked", 0.007, 401),
    ("expired", 0.003, 401),
    ("invalid", 0.04, 401),
    ("missing", 0.015, 401),
    ("malformed", 0.005, 401),
)
KEYLESS = {"invalid", "missing", "malformed"}
ROUTES = ("/v1/services", "/v1/services/{service_id:str}", "/v1/api-keys", "/v1/api-keys/{key_id:str}/usage")


def synthetic_rows(count: int, *, keys: int, ips: int, hours: float, seed: int = 7) -> list[UsageRecord]:
    rng = random.Random(seed)
    key_ids = [f"key_bench{n:06d}" for n in range(keys)]
    accounts = [f"acct_bench{n % max(keys // 4, 1):05d}" for n in range(keys)]
    ip_pool = [f"198.51.{n // 250}.{n % 250 + 1}" for n in range(ips)]
    key_ips = [rng.sample(ip_pool, k=rng.randint(1, 4)) for _ in range(keys)]
    key_origin = [f"https://app{n}.example.com" if n % 3 == 0 else None for n in range(keys)]
    popularity = [1.0 / (rank + 1) ** 0.8 for rank in range(keys)]  # Zipf-like
    chosen_keys = rng.choices(range(keys), weights=popularity, k=count)
    names = [o[0] for o in OUTCOMES]
    chosen_outcomes = rng.choices(range(len(OUTCOMES)), weights=[o[1] for o in OUTCOMES], k=count)
    span_us = int(hours * 3_600_000_000)
    rows: list[UsageRecord] = []
    for i in range(count):
        k = chosen_keys[i]
        outcome = names[chosen_outcomes[i]]
        keyless = outcome in KEYLESS
        rows.append(
            UsageRecord(
                occurred_at_us=START_US + i * span_us // count + rng.randrange(1_000_000),
                request_id=f"req_{i:016x}",
                key_id=None if keyless else key_ids[k],
                account_id=None if keyless else accounts[k],
                client_ip=rng.choice(ip_pool) if keyless else rng.choice(key_ips[k]),
                origin=key_origin[k] if not keyless else None,
                method="GET",
                route=rng.choice(ROUTES),
                status=OUTCOMES[chosen_outcomes[i]][2],
                outcome=outcome,
                detail=None,
                latency_us=rng.randrange(200, 5_000),
            )
        )
    return rows


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


async def admin(pg: str, statement: str) -> None:
    conn = await asyncpg.connect(pg + "/postgres", timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def admin_db(pg: str, database: str, statement: str) -> None:
    conn = await asyncpg.connect(f"{pg}/{database}", timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> dict[str, float | int | str]:
    console = Console(stderr=True)
    name = f"bench_usage_{os.getpid()}"
    url = f"{args.pg.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    await admin(args.pg, f"DROP DATABASE IF EXISTS {name}")
    await admin(args.pg, f"CREATE DATABASE {name}")
    engine = create_engine(url)
    try:
        await upgrade_to_head_async(url)
        console.print(f"generating {args.rows:,} synthetic usage rows …")
        rows = synthetic_rows(args.rows, keys=args.keys, ips=args.ips, hours=args.hours)
        with progress_bar(console) as bar:
            task = bar.add_task("append_usage", total=len(rows))
            for start in range(0, len(rows), args.append_batch):
                chunk = rows[start : start + args.append_batch]
                await append_usage(engine, chunk, recorded_at_us=chunk[-1].occurred_at_us)
                bar.update(task, advance=len(chunk))
        await admin_db(args.pg, name, "VACUUM ANALYZE usage_log")
        with progress_bar(console) as bar:
            task = bar.add_task("rebuild key_usage", total=len(rows))
            began = time.perf_counter()
            result = await rebuild_into(
                engine,
                key_usage.PROJECTION,  # type: ignore[arg-type]
                suffix="__bench",
                batch_size=args.batch_size,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
            elapsed = time.perf_counter() - began
        tables = key_usage.PROJECTION.tables("__bench")
        async with engine.connect() as conn:
            sizes: dict[str, int] = {}
            for t in tables:
                sizes[t.name] = int(await conn.scalar(select(func.count()).select_from(t)) or 0)
        await drop_tables(engine, tables)
    finally:
        await engine.dispose()
        await admin(args.pg, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    rate = result.events_applied / elapsed
    report: dict[str, float | int | str] = {
        "rows": result.events_applied,
        "seconds": round(elapsed, 2),
        "rows_per_second": round(rate),
        "batch_size": args.batch_size,
        "target": TARGET_ROWS_PER_SECOND,
        **{f"rows_in_{name}": count for name, count in sizes.items()},
    }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--ips", type=int, default=50)
    parser.add_argument("--hours", type=float, default=24.0, help="event-time span of the synthetic rows")
    parser.add_argument("--batch-size", type=int, default=20_000, help="rows per rebuild batch")
    parser.add_argument("--append-batch", type=int, default=10_000, help="rows per append_usage call")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    for field, value in report.items():
        print(f"{field:<36} {value:>12,}" if isinstance(value, int) else f"{field:<36} {value:>12}")
    verdict = "PASS" if report["rows_per_second"] >= TARGET_ROWS_PER_SECOND else "FAIL"
    print(f"{verdict}: {report['rows_per_second']:,} rows/s (target >= {TARGET_ROWS_PER_SECOND:,})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
