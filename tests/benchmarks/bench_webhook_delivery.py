"""Webhook delivery: how soon a leak report reaches a subscribed endpoint, and how fast a backlog drains.

Runs the app in-process (its real lifespan: projections, dispatcher) on a scratch database — the
embedded SQLite default, or PostgreSQL with ``--pg`` — with a real HTTP receiver on loopback.

1. Latency: ``--iterations`` times, create a key, report it leaked (``POST /v1/leaks``), and time from
   the 202 to the receiver getting the signed ``leak.reported`` delivery. Prints p50/p95/p99/max.
2. Backlog: with the dispatcher stopped, create ``--backlog`` keys (one ``key.created`` delivery each to
   one endpoint), start a dispatcher, and time until the receiver has them all, in order.

    .venv/bin/python tests/benchmarks/bench_webhook_delivery.py [--pg postgresql://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reservekit.events.types import Metadata

from reservekit.migrate import upgrade_to_head_async
from reservekit.settings import Settings
from reservekit.usecases.accounts import open_account
from reservekit.web.app import create_app
from tests.webhooks.receiver import Receiver


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> dict[str, object]:
    scratch = tempfile.mkdtemp(prefix="bench_webhooks_")
    database_url = f"sqlite+aiosqlite:///{scratch}/reservekit.db"
    pg_name = f"bench_webhooks_{os.getpid()}"
    if args.pg:
        conn = await asyncpg.connect(args.pg + "/postgres")
        await conn.execute(f"CREATE DATABASE {pg_name}")
        await conn.close()
        database_url = args.pg.replace("postgresql://", "postgresql+asyncpg://") + "/" + pg_name
    await upgrade_to_head_async(database_url)
    settings = Settings(
        data_dir=Path(scratch),
        database_url=database_url,
        key_pepper="0123456789abcdef" * 4,
        webhooks_allow_loopback=True,
        plans={"free": 1_000_000},
    )
    app = create_app(settings)
    receiver = await Receiver().start()
    results: dict[str, object] = {"backend": "postgresql" if args.pg else "sqlite"}
    try:
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
            runtime = app.state.runtime
            transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 50_000))
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                _account, issued = await open_account(
                    runtime.authority, name="Bench", plan="free", metadata=Metadata(source="cli")
                )
                await runtime.refresh_projections()
                auth = {"Authorization": f"Bearer {issued.secret}"}
                made = await client.post(
                    "/v1/webhook-endpoints",
                    json={"url": receiver.url, "event_types": ["leak.reported", "key.created"]},
                    headers=auth,
                )
                assert made.status_code == 201, made.text
                latencies: list[float] = []
                for n in range(args.iterations):
                    before = len(receiver.requests)
                    key = (await client.post("/v1/api-keys", json={"name": "leaky"}, headers=auth)).json()
                    before += 1
                    await receiver.wait_for(before)  # its key.created
                    # A fresh client IP each time: leak reports are limited to 10 per IP per minute.
                    peer = httpx.ASGITransport(app=app, client=(f"198.51.100.{n % 250 + 1}", 50_000))
                    async with httpx.AsyncClient(transport=peer, base_url="http://bench") as reporter:
                        reported = await reporter.post("/v1/leaks", json={"key": key["secret"]})
                    answered = time.perf_counter()
                    assert reported.status_code == 202
                    await receiver.wait_for(before + 1)
                    latencies.append((time.perf_counter() - answered) * 1000)
                results["leak_to_receipt_ms"] = {
                    "n": len(latencies),
                    "p50": round(percentile(latencies, 50), 1),
                    "p95": round(percentile(latencies, 95), 1),
                    "p99": round(percentile(latencies, 99), 1),
                    "max": round(max(latencies), 1),
                }
                await runtime.dispatcher.stop()
                already = len(receiver.requests)
                for n in range(args.backlog):
                    await client.post("/v1/api-keys", json={"name": f"b{n}"}, headers=auth)
                started = time.perf_counter()
                runtime.dispatcher.start()
                await receiver.wait_for(already + args.backlog, within=600)
                drained = time.perf_counter() - started
                names = [json.loads(r.body)["data"]["name"] for r in receiver.requests[already:]]
                results["backlog"] = {
                    "deliveries": args.backlog,
                    "seconds": round(drained, 2),
                    "per_second": round(args.backlog / drained, 1),
                    "in_order": names == [f"b{n}" for n in range(args.backlog)],
                }
    finally:
        await receiver.close()
        if args.pg:
            conn = await asyncpg.connect(args.pg + "/postgres")
            await conn.execute(f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")
            await conn.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--backlog", type=int, default=300)
    parser.add_argument("--pg", help="postgresql://user@host:port (a scratch database is created)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
