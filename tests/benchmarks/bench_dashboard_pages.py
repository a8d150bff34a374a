"""The usage and security pages with 1,000,000 usage rows in one account: each page's server time.

Creates a scratch database (PostgreSQL ``bench_dash_<pid>`` by default, or a SQLite file with
``--backend sqlite``), migrates it, opens one account with ``--keys`` keys (Zipf-like popularity) and an
owner member through the application service, then bulk-loads ``--rows`` usage rows spread over the 30
days before the (fixed) clock: COPY on PostgreSQL, ``executemany`` on SQLite. The projections (per-key
minutes, first-seen, flags) catch up as they would live. Then, signed in as the owner, each page is
requested ``--repeat`` times through the app in this process (httpx's ASGI transport: no network, so the
time is the server's) and the median and slowest are printed, slowest page last. The database is dropped
at the end, also on failure or Ctrl-C.

    .venv/bin/python tests/benchmarks/bench_dashboard_pages.py [--rows 1000000] [--backend postgres] \
        [--keys 10] [--repeat 5] [--pg postgresql://postgres@127.0.0.1:5432] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

from reservekit.clock import FakeClock, to_micros
from reservekit.domain.events import Metadata
from reservekit.migrate import upgrade_to_head_async
from reservekit.projecting.runner import catch_up
from reservekit.settings import Settings
from reservekit.usecases.commands import AddMember, CreateKey, OpenAccount
from reservekit.web.app import create_app

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SPAN_US = 30 * 86_400_000_000
PASSWORD = "correct horse battery staple"
OUTCOMES = (
    ("ok", 0.88, 200),
    ("rate_limited", 0.05, 429),
    ("scope_denied", 0.03, 403),
    ("origin_mismatch", 0.02, 403),
    ("revoked", 0.015, 401),
    ("expired", 0.005, 401),
)
COLUMNS = (
    "position",
    "recorded_at_us",
    "occurred_at_us",
    "request_id",
    "key_id",
    "account_id",
    "client_ip",
    "origin",
    "method",
    "route",
    "status",
    "outcome",
    "detail",
    "latency_us",
)
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


def rows_for(count: int, account_id: str, key_ids: list[str], seed: int = 11) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    popularity = [1.0 / (rank + 1) for rank in range(len(key_ids))]
    keys = rng.choices(key_ids, weights=popularity, k=count)
    outcomes = rng.choices(range(len(OUTCOMES)), weights=[o[1] for o in OUTCOMES], k=count)
    start = to_micros(NOW) - SPAN_US
    ips = [f"198.51.{n // 250}.{n % 250 + 1}" for n in range(400)]
    rows = []
    for i in range(count):
        at = start + i * SPAN_US // count
        name, _, status = OUTCOMES[outcomes[i]]
        rows.append(
            (
                i + 1,
                at + 1_000_000,
                at,
                f"req_{i:016x}",
                keys[i],
                account_id,
                ips[rng.randrange(len(ips))],
                "https://shop.example.com" if i % 3 == 0 else None,
                "GET",
                "/v1/services",
                status,
                name,
                None,
                rng.randrange(200, 5_000),
            )
        )
    return rows


async def bulk_load(url: str, backend: str, rows: list[tuple[Any, ...]]) -> None:
    if backend == "postgres":
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            await conn.copy_records_to_table("usage_log", records=rows, columns=COLUMNS)
            await conn.execute("ANALYZE usage_log")
        finally:
            await conn.close()
        return
    path = url.split("///", 1)[1]
    with sqlite3.connect(path) as db:
        placeholders = ", ".join("?" for _ in COLUMNS)
        statement = f"INSERT INTO usage_log ({', '.join(COLUMNS)}) VALUES ({placeholders})"  # noqa: S608 - constants
        db.executemany(statement, rows)
        db.execute("ANALYZE")


async def admin(pg: str, statement: str) -> None:
    conn = await asyncpg.connect(pg + "/postgres", timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def measure(args: argparse.Namespace, url: str, data_dir: Path) -> list[dict[str, Any]]:
    await upgrade_to_head_async(url)
    settings = Settings(data_dir=data_dir, database_url=url, key_pepper="0123456789abcdef" * 4)
    clock = FakeClock(NOW - timedelta(days=31))
    app = create_app(settings, clock=clock)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        runtime = app.state.runtime
        meta = Metadata(source="cli")
        opened = await runtime.application.execute(OpenAccount(name="Big", plan="pro"), meta)
        account_id = opened.account.account_id
        key_ids = [opened.first_key.key.key_id]
        for n in range(args.keys - 1):
            created = await runtime.application.execute(CreateKey(account_id=account_id, name=f"k{n}"), meta)
            key_ids.append(created.key.key_id)
        await runtime.application.execute(
            AddMember(account_id=account_id, email="owner@big.example", password=PASSWORD), meta
        )
        clock.set(NOW)
        say(f"generating and loading {args.rows:,} usage rows ({args.backend}) …")
        began = time.perf_counter()
        await bulk_load(url, args.backend, rows_for(args.rows, account_id, key_ids))
        say(f"  loaded in {time.perf_counter() - began:.1f} s; projections catching up …")
        for projection in runtime.runner.projections:
            began = time.perf_counter()
            await catch_up(runtime.engine, projection, batch_size=20_000)
            say(f"  {projection.name} caught up in {time.perf_counter() - began:.1f} s")
        transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 50_000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client:
            form = await client.get("/dashboard/signin")
            token = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
            signed = await client.post(
                "/dashboard/signin",
                data={"_csrf_token": token, "email": "owner@big.example", "password": PASSWORD},
            )
            assert signed.status_code == 303, signed.text
            token = CSRF.search((await client.get("/dashboard/security/")).text).group(1)  # type: ignore[union-attr]
            busiest = key_ids[0]
            day_ago = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
            pages: list[tuple[str, str, dict[str, str] | None]] = [
                ("GET", "/dashboard/usage/?period=1h", None),
                ("GET", "/dashboard/usage/?period=24h", None),
                ("GET", "/dashboard/usage/?period=7d", None),
                ("GET", "/dashboard/usage/?period=30d", None),
                ("GET", "/dashboard/usage/?period=24h&outcome=expired", None),
                ("GET", f"/dashboard/usage/?period=24h&key={key_ids[-1]}", None),
                ("GET", f"/dashboard/usage/?period=24h&before={args.rows // 2}", None),
                ("GET", f"/dashboard/usage/{busiest}?period=30d", None),
                ("GET", f"/dashboard/usage/{busiest}?period=1h&outcome=revoked", None),
                ("GET", "/dashboard/security/", None),
                ("GET", "/dashboard/security/trail", None),
                ("GET", "/dashboard/security/keys-as-of", None),
                ("POST", "/dashboard/security/verify", {"_csrf_token": token}),
                ("POST", "/dashboard/security/export", {"_csrf_token": token, "since": day_ago}),
            ]
            results = []
            for method, path, data in pages:
                times = []
                for _ in range(args.repeat):
                    began = time.perf_counter()
                    response = await client.request(method, path, data=data)
                    times.append((time.perf_counter() - began) * 1000)
                    assert response.status_code == 200, (path, response.status_code, response.text[:500])
                label = path.replace(busiest, "{busiest key}").replace(key_ids[-1], "{key}")
                results.append(
                    {
                        "page": f"{method} {label}",
                        "median_ms": round(statistics.median(times), 1),
                        "max_ms": round(max(times), 1),
                        "bytes": len(response.content),
                    }
                )
    return results


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench_dash_") as tmp:
        if args.backend == "sqlite":
            return await measure(args, f"sqlite+aiosqlite:///{tmp}/bench.db", Path(tmp))
        name = f"bench_dash_{os.getpid()}"
        await admin(args.pg, f"DROP DATABASE IF EXISTS {name}")
        await admin(args.pg, f"CREATE DATABASE {name}")
        try:
            url = f"{args.pg.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
            return await measure(args, url, Path(tmp))
        finally:
            await admin(args.pg, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    results.sort(key=lambda r: r["median_ms"])
    print(f"{'page':<66} {'median ms':>10} {'max ms':>9} {'bytes':>9}")
    for r in results:
        print(f"{r['page']:<66} {r['median_ms']:>10} {r['max_ms']:>9} {r['bytes']:>9,}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
