"""Sustained load against a real server on PostgreSQL: no usage row lost, and how few writes it takes.

    .venv/bin/python tests/benchmarks/bench_usage_load.py [--seconds 20] [--connections 32]

Starts one Granian server (CPU 0) on a scratch PostgreSQL database, drives ``GET /v1/services`` with wrk
(CPU 1) — one authorised run and one with an unknown key, so refused requests are logged too — reads the
server's own count of API responses from /metrics, stops the server gracefully (SIGTERM: the usage
writer flushes on shutdown), then compares usage rows with responses and counts the batched inserts
(one ``recorded_at_us`` per insert). Targets (SPEC §11): zero lost rows; ≤ 1 write per 100 requests.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _harness import Server, base_env, cli, pinned

from reservekit.keys.tokens import generate_secret

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER_CPU, CLIENT_CPU = 0, 1


def psql(sql: str) -> None:
    subprocess.run(["psql", ADMIN_DSN, "-qc", sql], check=True, capture_output=True)


def wrk(url: str, secret: str, seconds: int, connections: int) -> int:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "-H",
        f"Authorization: Bearer {secret}",
        url,
    ]
    done = subprocess.run(
        pinned(command, CLIENT_CPU), capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    match = re.search(r"(\d+) requests in", done.stdout)
    assert match, done.stdout
    return int(match.group(1))


def served_by_server(metrics: str) -> int:
    return sum(
        int(float(m))
        for m in re.findall(r'^reservekit_requests_total\{outcome="[a-z_]+"\} ([0-9.e+]+)$', metrics, re.M)
    )


async def count_rows(url: str) -> tuple[int, int]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM usage_log")
        writes = await conn.fetchval("SELECT count(DISTINCT recorded_at_us) FROM usage_log")
        return int(rows), int(writes)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    database = f"bench_usage_load_{abs(hash(tempfile.gettempdir())) % 10_000}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
    psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    psql(f"CREATE DATABASE {database}")
    work = Path(tempfile.mkdtemp(prefix="rk-usage-load-"))
    server: Server | None = None
    try:
        env = base_env(
            RESERVEKIT_DATABASE_URL=url,
            RESERVEKIT_KEY_PEPPER="ab" * 32,
            RESERVEKIT_DATA_DIR=str(work),
            RESERVEKIT_PLANS="free=100000000",
            RESERVEKIT_FAILED_AUTH_PER_IP_PER_MINUTE="100000000",
        )
        cli(env, "migrate")
        account = cli(env, "accounts", "create", "--name", "load", "--json")
        secret = account["key"]["secret"]
        server = Server("granian", env, cpu=SERVER_CPU, log_path=work / "server.log")
        server.wait_ready()
        target = server.url + "/v1/services"
        ok = wrk(target, secret, args.seconds, args.connections)
        refused = wrk(target, generate_secret(), max(2, args.seconds // 4), args.connections)
        time.sleep(1)  # let requests still in flight when wrk stopped finish before counting
        served = served_by_server(httpx.get(server.url + "/metrics", timeout=10).text)
        server.stop(timeout=60)
        rows, writes = asyncio.run(count_rows(url.replace("+asyncpg", "")))
    finally:
        if server:
            server.stop()
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        shutil.rmtree(work, ignore_errors=True)
    lost = served - rows
    per_100 = 100 * writes / max(rows, 1)
    print(f"wrk completed: {ok} authorised + {refused} refused; the server answered {served} API requests")
    print(f"usage rows after graceful stop: {rows}  lost: {lost}")
    print(f"batched inserts: {writes}  => {per_100:.3f} writes per 100 requests (target <= 1)")
    return 0 if lost == 0 and per_100 <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
