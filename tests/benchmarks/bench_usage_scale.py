"""The usage log at scale on PostgreSQL (issue 14, target 6): bytes per row, the audit and usage queries.

Appends ``--rows`` synthetic rows (``bench_usage_rebuild.synthetic_rows``) into today's day partition,
then measures: bytes per row (``pg_total_relation_size`` of every partition, indexes included, after
VACUUM ANALYZE; target <= 150), ``GET /v1/audit/usage?key_id=`` as ``audit.trail.read_usage`` for the
busiest and a quiet key (p50/p99 of ``--queries``), and the per-minute rollup query behind
``GET /v1/api-keys/{id}/usage`` (``key_usage.usage_buckets`` over 24 h, hourly buckets) after the
projection caught up (p99 target <= 50 ms).

    .venv/bin/python tests/benchmarks/bench_usage_scale.py [--rows 300000] [--queries 200]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _scratch import DEFAULT_PG, Row, admin, print_rows, row, scratch_database
from bench_usage_rebuild import START_US, synthetic_rows
from sqlalchemy import text

from projections import key_usage
from reservekit.audit.trail import UsageFilter, read_usage
from reservekit.clock import DAY_US, HOUR_US, SystemClock
from reservekit.db import create_engine, read_transaction, write_transaction
from reservekit.logging import configure_logging
from reservekit.projecting.rebuild import replace_live
from reservekit.projecting.runner import ensure_projection
from reservekit.usage.log import append_usage
from reservekit.usage.retention import ensure_partitions

BYTES_TARGET = 150
QUERY_P99_TARGET_MS = 50.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def run(*, rows: int = 300_000, queries: int = 200, pg: str = DEFAULT_PG) -> list[Row]:
    out: list[Row] = []
    async with scratch_database(pg, "bench_usage_scale") as url:
        engine = create_engine(url)
        try:
            await ensure_partitions(engine, START_US, ahead_days=2)
            synthetic = synthetic_rows(rows, keys=2_000, ips=50, hours=24.0)
            for start in range(0, rows, 10_000):
                chunk = synthetic[start : start + 10_000]
                await append_usage(engine, chunk, recorded_at_us=chunk[-1].occurred_at_us)
            await admin(pg, "VACUUM ANALYZE usage_log", database=url.rsplit("/", 1)[1])
            async with engine.connect() as conn:
                size = int(await conn.scalar(text(
                    "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
                    "WHERE inhparent = 'usage_log'::regclass")) or 0)  # fmt: skip
            per_row = size / rows
            out.append(row(f"usage log bytes per row, PG, indexes included ({rows:,} rows)", per_row, "bytes",
                           f"<= {BYTES_TARGET}", per_row <= BYTES_TARGET))  # fmt: skip
            for label, key_id in (("busiest key", "key_bench000000"), ("quiet key", "key_bench001999")):
                timings = []
                for _ in range(queries):
                    began = time.perf_counter()
                    await read_usage(engine, UsageFilter(key_id=key_id, limit=100))
                    timings.append((time.perf_counter() - began) * 1000)
                out.append(row(f"audit usage ?key_id= ({label}) p50", pct(timings, 0.5), "ms"))
                p99 = pct(timings, 0.99)
                target = f"<= {QUERY_P99_TARGET_MS}"
                out.append(
                    row(f"audit usage ?key_id= ({label}) p99", p99, "ms", target, p99 <= QUERY_P99_TARGET_MS)
                )
            async with write_transaction(engine) as conn:
                await ensure_projection(conn, key_usage.PROJECTION, SystemClock())  # type: ignore[arg-type]
            await replace_live(engine, key_usage.PROJECTION)  # type: ignore[arg-type]
            timings = []
            for _ in range(queries):
                began = time.perf_counter()
                async with read_transaction(engine) as conn:
                    await key_usage.usage_buckets(
                        conn, "key_bench000000", START_US, START_US + DAY_US, HOUR_US
                    )
                timings.append((time.perf_counter() - began) * 1000)
            p99 = pct(timings, 0.99)
            label = "key usage 24 h by hour (rollup), busiest key, p99"
            out.append(row(label, p99, "ms", f"<= {QUERY_P99_TARGET_MS}", p99 <= QUERY_P99_TARGET_MS))
        finally:
            await engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--pg", default=DEFAULT_PG)
    args = parser.parse_args()
    configure_logging(level="WARNING", json=False)
    rows = asyncio.run(run(rows=args.rows, queries=args.queries, pg=args.pg))
    print_rows(rows)
    return 0 if all(r["ok"] is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
