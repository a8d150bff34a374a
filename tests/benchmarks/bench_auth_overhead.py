"""Auth overhead (SPEC §11): authenticated ``GET /v1/services`` vs. the same handler with auth switched off.

One real server process (embedded SQLite in a temp dir) pinned to CPU 0, ``wrk`` pinned to CPU 1, both
routes measured in the same run in alternating rounds (auth, open, auth, open, ...) so drift cancels.
Prints req/s per round, the median of each route and the ratio auth/open (target >= 0.85).

    .venv/bin/python tests/benchmarks/bench_auth_overhead.py [--seconds 10] [--connections 32] \
        [--rounds 3] [--server granian|uvicorn|both]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
from _harness import Server, base_env, cli, median, pinned

TARGET_RATIO = 0.85
SERVER_CPU, CLIENT_CPU = 0, 1
ROUTES = {"auth": "/v1/services", "open": "/bench/v1/services", "ceiling": "/healthz"}

# Counts every response that is not exactly 200, and reports once as a JSON line when wrk finishes.
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non200 = 0 end
function response(status, headers, body) if status ~= 200 then non200 = non200 + 1 end end
function done(summary, latency, requests)
  local n, e = 0, summary.errors
  for _, t in ipairs(threads) do n = n + t:get("non200") end
  io.write(string.format(
    '\\nWRK_JSON {"requests":%d,"duration_us":%d,"non200":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, n, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Round:
    server: str
    route: str
    rps: float
    requests: int
    non200: int
    socket_errors: int
    p50_ms: float
    p99_ms: float

    def line(self, number: int | str) -> str:
        return (
            f"  {self.server:8} round {number} {self.route:7} {self.rps:9.1f} req/s"
            f"  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms"
            f"  non-200 {self.non200}  socket errors {self.socket_errors}"
        )


def run_wrk(
    kind: str, route: str, url: str, *, seconds: int, args: argparse.Namespace, script: Path
) -> Round:
    command = ["wrk", "-t1", f"-c{args.connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    # The same request bytes on every route: the open twin simply ignores the Authorization header.
    command += ["-H", f"Authorization: Bearer {args.secret}"]
    done = subprocess.run(
        pinned([*command, url], CLIENT_CPU), capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    r = json.loads(line.removeprefix("WRK_JSON "))
    rps = r["requests"] / (r["duration_us"] / 1e6)
    return Round(
        kind, route, rps, r["requests"], r["non200"], r["socket_errors"], r["p50_us"] / 1e3, r["p99_us"] / 1e3
    )


def check_once(client: httpx.Client, url: str, headers: dict[str, str], services: int) -> None:
    """Both routes must answer 200 with the same listing before we time them."""
    response = client.get(url, headers=headers)
    if response.status_code != 200 or len(response.json()["data"]) != services:
        raise RuntimeError(f"GET {url} -> {response.status_code}: {response.text[:300]}")


def bench_server(kind: str, env: dict[str, str], args: argparse.Namespace, work: Path) -> list[Round]:
    script = work / "report.lua"
    script.write_text(WRK_SCRIPT)
    auth = {"Authorization": f"Bearer {args.secret}"}
    server = Server(kind, env, cpu=SERVER_CPU, log_path=work / f"{kind}.log")
    rounds: list[Round] = []
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            existing = len(client.get(ROUTES["auth"], headers=auth).json()["data"])
            for n in range(existing, args.services):
                body = {"name": f"Service {n}", "duration_minutes": 30 + n, "description": "benchmark row"}
                client.post(ROUTES["auth"], json=body, headers=auth).raise_for_status()
            for route in ("auth", "open"):
                check_once(client, ROUTES[route], auth if route == "auth" else {}, args.services)
        for route, path in ROUTES.items():  # untimed warm-up: connection pool, caches, allocator
            run_wrk(kind, route, server.url + path, seconds=args.warmup, args=args, script=script)
        for number in range(1, args.rounds + 1):
            for route in ("auth", "open"):
                rounds.append(
                    run_wrk(
                        kind,
                        route,
                        server.url + ROUTES[route],
                        seconds=args.seconds,
                        args=args,
                        script=script,
                    )
                )
                print(rounds[-1].line(number), flush=True)
        # Reference only: a public route with no database work, through the same middleware.
        rounds.append(
            run_wrk(
                kind,
                "ceiling",
                server.url + ROUTES["ceiling"],
                seconds=args.seconds,
                args=args,
                script=script,
            )
        )
        print(rounds[-1].line("-"), flush=True)
    except Exception:
        print(
            f"--- {kind} log (tail) ---\n{server.log_path.read_text(errors='replace')[-3000:]}",
            file=sys.stderr,
        )
        raise
    finally:
        server.stop()
    return rounds


def summarise(rounds: list[Round]) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for kind in dict.fromkeys(r.server for r in rounds):
        auth = median([r.rps for r in rounds if r.server == kind and r.route == "auth"])
        open_ = median([r.rps for r in rounds if r.server == kind and r.route == "open"])
        ceiling = next(r.rps for r in rounds if r.server == kind and r.route == "ceiling")
        summary[kind] = {
            "auth_median_rps": auth,
            "open_median_rps": open_,
            "ratio": auth / open_,
            "ceiling_rps": ceiling,
        }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="length of each timed round")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per route (at least 3)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of untimed load per route first")
    parser.add_argument("--services", type=int, default=5, help="rows the listing returns")
    parser.add_argument("--server", choices=["granian", "uvicorn", "both"], default="granian")
    parser.add_argument("--json", type=Path, help="also write every round and the summary here")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="server RESERVEKIT_LOG_LEVEL; INFO writes the per-request access lines (RESERVEKIT_ACCESS_LOG)",
    )
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench_auth_"))
    try:
        env = base_env(
            RESERVEKIT_DATA_DIR=str(work / "data"),
            RESERVEKIT_PLANS="free=1000000000",
            RESERVEKIT_LOG_LEVEL=args.log_level,
        )
        created = cli(env, "accounts", "create", "--name", "bench", "--plan", "free", "--json")
        env["RESERVEKIT_BENCH_UNAUTHENTICATED_ACCOUNT"] = created["account"]["id"]
        kinds = ["granian", "uvicorn"] if args.server == "both" else [args.server]
        print(
            f"{args.rounds} rounds x {args.seconds:g}s per route, {args.connections} connections, "
            f"server on CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU}"
        )
        args.secret = created["key"]["secret"]
        rounds = [r for kind in kinds for r in bench_server(kind, env, args, work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarise(rounds)
    print()
    for kind, s in summary.items():
        short = TARGET_RATIO - s["ratio"]
        verdict = "meets" if short <= 0 else f"MISSES by {short:.3f}"
        print(
            f"{kind:8} median auth {s['auth_median_rps']:9.1f} req/s  open {s['open_median_rps']:9.1f} req/s"
            f"  ratio {s['ratio']:.3f} ({verdict} target {TARGET_RATIO})"
            f"  [/healthz ceiling {s['ceiling_rps']:.0f} req/s]"
        )
    if len(summary) == 2:
        g, u = summary["granian"], summary["uvicorn"]
        for field in ("auth_median_rps", "open_median_rps", "ceiling_rps"):
            print(f"granian/uvicorn {field}: {g[field] / u[field]:.2f}x")
    if args.json:
        args.json.write_text(
            json.dumps({"rounds": [r.__dict__ for r in rounds], "summary": summary}, indent=2)
        )
    bad = [r for r in rounds if r.non200 or r.socket_errors]
    if bad:
        print(f"FAIL: {len(bad)} round(s) had non-200 responses or socket errors: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
