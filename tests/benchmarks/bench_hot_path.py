"""The hot path (issue 14 targets 1 and 2): authenticated routes against a bare Litestar route, one run.

Two server processes pinned to CPU 0: ``reservekit serve`` (Granian, 1 worker) and ``bare_app.py`` (the
same Litestar under Granian with one route and no project code). ``wrk`` (1 thread, 32 connections) is
pinned to CPU 1. Routes alternate round by round so drift on the shared machine cancels:

- ``bare``: ``GET /`` on the bare app, the yardstick;
- ``healthz``: ``GET /healthz``, public, through the project's middleware;
- ``trivial``: ``GET /bench/trivial``, the bare route's body behind the key check (key in memory, quota
  spent, rate-limit headers, one usage row per request, projections running);
- ``services``: authenticated ``GET /v1/services`` (5 rows from the database).

``--worker inline`` (the embedded default, ``RESERVEKIT_RUN_WORKER=true``) runs projections, detectors and
deliveries in the serving process; ``--worker separate`` runs ``reservekit worker`` as its own process
(pinned to CPU 1 with wrk) and the server with ``RESERVEKIT_RUN_WORKER=false``. ``--pg`` uses a scratch
PostgreSQL database instead of the embedded SQLite.

    .venv/bin/python tests/benchmarks/bench_hot_path.py [--seconds 5] [--rounds 3] [--worker inline|separate]
        [--pg postgresql://postgres@127.0.0.1:5432] [--routes bare,trivial,services] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx
from _harness import (
    BareServer,
    BenchRow,
    Server,
    Worker,
    base_env,
    cli,
    median,
    print_rows,
    scratch_postgres,
)
from bench_auth_overhead import WRK_SCRIPT, Round, run_wrk

SERVER_CPU, CLIENT_CPU = 0, 1
PATHS = {"healthz": "/healthz", "trivial": "/bench/trivial", "services": "/v1/services"}
TARGETS = {"trivial": ("ratio >= 0.85", 0.85), "services": (">= 3,000 req/s", None)}
SERVICES_FLOOR = 3000.0


def run(
    quick: bool = False,
    *,
    seconds: int | None = None,
    rounds: int | None = None,
    worker: str = "inline",
    pg: str | None = None,
    routes: tuple[str, ...] = ("bare", "healthz", "trivial", "services"),
    connections: int = 32,
    verbose: bool = True,
) -> list[BenchRow]:
    seconds = seconds or (3 if quick else 5)
    rounds = rounds or (2 if quick else 3)
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    work = Path(tempfile.mkdtemp(prefix="bench_hot_"))
    measured: list[Round] = []
    backend = "postgresql" if pg else "sqlite"
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        env = base_env(RESERVEKIT_DATA_DIR=str(work / "data"), RESERVEKIT_PLANS="free=1000000000")
        if pg:
            url = stack.enter_context(scratch_postgres(pg, f"bench_hot_{os.getpid()}"))
            env["RESERVEKIT_DATABASE_URL"] = url
            env["RESERVEKIT_KEY_PEPPER"] = "a" * 64
            cli(env, "migrate")
        created = cli(env, "accounts", "create", "--name", "bench", "--plan", "free", "--json")
        env["RESERVEKIT_BENCH_UNAUTHENTICATED_ACCOUNT"] = created["account"]["id"]
        env["RESERVEKIT_RUN_WORKER"] = "true" if worker == "inline" else "false"
        secret = created["key"]["secret"]
        script = work / "report.lua"
        script.write_text(WRK_SCRIPT)
        server = Server("granian", env, cpu=SERVER_CPU, log_path=work / "server.log")
        stack.callback(server.stop)
        bare = BareServer(env, cpu=SERVER_CPU, log_path=work / "bare.log")
        stack.callback(bare.stop)
        if worker == "separate":
            stack.callback(Worker(env, cpu=CLIENT_CPU, log_path=work / "worker.log").stop)
        try:
            server.wait_ready()
            bare.wait_ready()
            auth = {"Authorization": f"Bearer {secret}"}
            with httpx.Client(base_url=server.url, timeout=10) as client:
                for n in range(5):
                    body = {"name": f"Service {n}", "duration_minutes": 30 + n, "description": "bench row"}
                    client.post("/v1/services", json=body, headers=auth).raise_for_status()
                for route in routes:
                    if route != "bare":
                        client.get(PATHS[route], headers=auth).raise_for_status()
            urls = {r: (bare.url + "/" if r == "bare" else server.url + PATHS[r]) for r in routes}
            opts = argparse.Namespace(connections=connections, secret=secret)
            for route in routes:  # untimed warm-up
                run_wrk("granian", route, urls[route], seconds=1, args=opts, script=script)
            for number in range(1, rounds + 1):
                for route in routes:
                    measured.append(
                        run_wrk("granian", route, urls[route], seconds=seconds, args=opts, script=script)
                    )
                    if verbose:
                        print(measured[-1].line(number), file=sys.stderr, flush=True)
        except Exception:
            print(server.log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
    bad = [r for r in measured if r.non200 or r.socket_errors]
    if bad:
        raise RuntimeError(f"{len(bad)} round(s) had non-200 responses or socket errors")
    medians = {route: median([r.rps for r in measured if r.route == route]) for route in routes}
    base = medians.get("bare")
    rows = []
    for route in routes:
        target = TARGETS.get(route, ("", None))[0]
        note = f"{backend}, worker {worker}, {rounds}x{seconds}s"
        rows.append(
            BenchRow(
                "hot_path",
                f"{route} ({'GET /' if route == 'bare' else 'GET ' + PATHS[route]})",
                medians[route],
                "req/s",
                ratio=medians[route] / base if base else None,
                target=target,
                note=note,
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--worker", choices=["inline", "separate"], default="inline")
    parser.add_argument(
        "--pg", help="PostgreSQL server URL without a database, e.g. postgresql://postgres@127.0.0.1:5432"
    )
    parser.add_argument("--routes", default="bare,healthz,trivial,services")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows = run(
        args.quick,
        seconds=args.seconds,
        rounds=args.rounds,
        worker=args.worker,
        pg=args.pg,
        routes=tuple(args.routes.split(",")),
    )
    print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
