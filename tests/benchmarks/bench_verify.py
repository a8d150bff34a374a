"""Verify throughput (issue 15): ``POST /v1/keys/verify`` vs. a bare Litestar route, same server, same run.

One real server process (embedded SQLite in a temp dir) pinned to CPU 0, ``wrk`` pinned to CPU 1; the
two routes alternate round by round (verify, bare, verify, bare, ...) so drift cancels. ``bare`` is
``GET /bench/bare``: a public Litestar route returning ``{"ok": true}`` behind the same middleware
stack (registered only with ``RESERVEKIT_BENCH_UNAUTHENTICATED_ACCOUNT``). ``verify`` is an operator's
service key verifying a valid key with a scope and an origin, so every check runs and quota is spent
(plans of 10^9/minute, so nothing is refused). Prints req/s per round, the medians and the ratio
verify/bare (target >= 0.8); exits 1 on any non-200 or socket error.

    .venv/bin/python tests/benchmarks/bench_verify.py [--seconds 5] [--rounds 3] [--server granian|uvicorn]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
from _harness import Server, base_env, cli, median
from bench_auth_overhead import WRK_SCRIPT, Round, run_wrk

TARGET_RATIO = 0.8
VERIFY_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"key":"%s","required_scopes":["services:read"],"origin":"https://app.example.com","client_ip":"192.0.2.7"}'
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server", choices=["granian", "uvicorn"], default="granian")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench_verify_"))
    rounds: list[Round] = []
    try:
        env = base_env(RESERVEKIT_DATA_DIR=str(work / "data"), RESERVEKIT_PLANS="free=1000000000")
        ops = cli(env, "accounts", "create", "--name", "ops", "--operator", "--json")
        acme = cli(env, "accounts", "create", "--name", "acme", "--json")
        verified = cli(
            env,
            "keys",
            "create",
            "--account",
            acme["account"]["id"],
            "--name",
            "web",
            "--domain",
            "app.example.com",
            "--scope",
            "services:read",
            "--json",
        )
        env["RESERVEKIT_BENCH_UNAUTHENTICATED_ACCOUNT"] = acme["account"]["id"]
        args.secret = ops["key"]["secret"]  # sent as Authorization on both routes (bare ignores it)
        scripts = {"bare": work / "bare.lua", "verify": work / "verify.lua"}
        scripts["bare"].write_text(WRK_SCRIPT)
        scripts["verify"].write_text(VERIFY_LUA % verified["secret"] + WRK_SCRIPT)
        paths = {"verify": "/v1/keys/verify", "bare": "/bench/bare"}
        server = Server(args.server, env, cpu=0, log_path=work / "server.log")
        try:
            server.wait_ready()
            answer = httpx.post(
                server.url + paths["verify"],
                json={
                    "key": verified["secret"],
                    "required_scopes": ["services:read"],
                    "origin": "https://app.example.com",
                },
                headers={"Authorization": f"Bearer {args.secret}"},
            ).json()
            if not answer.get("valid"):
                raise RuntimeError(f"verify did not answer valid: {answer}")
            for route in ("verify", "bare"):
                run_wrk(
                    args.server,
                    route,
                    server.url + paths[route],
                    seconds=args.warmup,
                    args=args,
                    script=scripts[route],
                )
            for number in range(1, args.rounds + 1):
                for route in ("verify", "bare"):
                    rounds.append(
                        run_wrk(
                            args.server,
                            route,
                            server.url + paths[route],
                            seconds=args.seconds,
                            args=args,
                            script=scripts[route],
                        )
                    )
                    print(rounds[-1].line(number), flush=True)
        except Exception:
            print(server.log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    verify = median([r.rps for r in rounds if r.route == "verify"])
    bare = median([r.rps for r in rounds if r.route == "bare"])
    ratio = verify / bare
    verdict = "meets" if ratio >= TARGET_RATIO else f"MISSES by {TARGET_RATIO - ratio:.3f}"
    print(
        f"\n{args.server}: median verify {verify:.1f} req/s  bare {bare:.1f} req/s  ratio {ratio:.3f} "
        f"({verdict} target {TARGET_RATIO})"
    )
    if args.json:
        args.json.write_text(json.dumps({"rounds": [r.__dict__ for r in rounds], "ratio": ratio}, indent=2))
    bad = [r for r in rounds if r.non200 or r.socket_errors]
    if bad:
        print(f"FAIL: {len(bad)} round(s) had non-200 responses or socket errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
