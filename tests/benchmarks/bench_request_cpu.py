"""Server CPU per request, route by route (issue 14 target 1, issue 15's verify): where the core goes.

One ``reservekit serve`` (Granian, embedded SQLite) pinned to CPU 0, wrk on CPU 1. For each route in
turn, the CPU time of every process of the server (``/proc/<pid>/stat``, user + system) over a wrk run,
divided by the requests answered. Routes: ``bare`` (``GET /bench/bare``: the project middleware, no key,
no usage row), ``trivial`` (``GET /bench/trivial``: one key check, one usage row), ``verify`` (an
operator's service key verifying a domain-restricted key: two key checks, two usage rows).

    .venv/bin/python tests/benchmarks/bench_request_cpu.py [--seconds 4] [--rounds 2] [--no-worker]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness import Server, base_env, cli, pinned
from bench_auth_overhead import WRK_SCRIPT
from bench_verify import VERIFY_LUA

ROUTES = {"bare": "/bench/bare", "trivial": "/bench/trivial", "verify": "/v1/keys/verify"}


def cpu_seconds(pids: list[str]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-worker", action="store_true", help="RESERVEKIT_RUN_WORKER=false")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_request_cpu_"))
    try:
        env = base_env(RESERVEKIT_DATA_DIR=str(work / "data"), RESERVEKIT_PLANS="free=1000000000")
        if args.no_worker:
            env["RESERVEKIT_RUN_WORKER"] = "false"
        ops = cli(env, "accounts", "create", "--name", "ops", "--operator", "--json")
        acme = cli(env, "accounts", "create", "--name", "acme", "--json")
        verified = cli(env, "keys", "create", "--account", acme["account"]["id"], "--name", "web",
                       "--domain", "app.example.com", "--scope", "services:read", "--json")  # fmt: skip
        env["RESERVEKIT_BENCH_UNAUTHENTICATED_ACCOUNT"] = acme["account"]["id"]
        (work / "plain.lua").write_text(WRK_SCRIPT)
        (work / "verify.lua").write_text(VERIFY_LUA % verified["secret"] + WRK_SCRIPT)
        server = Server("granian", env, cpu=0, log_path=work / "server.log")
        try:
            server.wait_ready()
            listed = subprocess.run(["pgrep", "-g", str(server.process.pid)], capture_output=True, text=True)
            pids = listed.stdout.split()
            auth = ["-H", f"Authorization: Bearer {ops['key']['secret']}"]
            for number in range(0, args.rounds + 1):  # round 0 warms up and is not printed
                for route, path in ROUTES.items():
                    script = work / ("verify.lua" if route == "verify" else "plain.lua")
                    seconds = 1 if number == 0 else args.seconds
                    command = [
                        "wrk",
                        "-t1",
                        "-c32",
                        f"-d{seconds}s",
                        *auth,
                        "-s",
                        str(script),
                        server.url + path,
                    ]
                    before = cpu_seconds(pids)
                    out = subprocess.run(
                        pinned(command, 1), capture_output=True, text=True, check=True
                    ).stdout
                    spent = cpu_seconds(pids) - before
                    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
                    if '"non200":0' not in out.replace(" ", ""):
                        print(f"FAIL: {route} answered something other than 200", file=sys.stderr)
                        return 1
                    if number:
                        print(f"round {number} {route:8} {requests / seconds:9.1f} req/s  "
                              f"server cpu {1e6 * spent / requests:6.1f} µs/request  "
                              f"core busy {spent / seconds:.2f}", flush=True)  # fmt: skip
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
