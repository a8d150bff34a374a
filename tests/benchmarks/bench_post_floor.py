"""The floor for a route that reads a request body (issue 15's verify ratio), with no project code.

One Granian worker serving ``bare_app:create_post_app`` pinned to CPU 0, wrk on CPU 1, routes
alternating round by round: ``GET /`` (the bare route), ``POST /post`` (a Litestar handler that awaits
``request.body()``), ``POST /raw`` (a raw ASGI handler reading the same body before Litestar). The body
is verify's request body. Prints req/s per round, the medians and each ratio to ``GET /``.

    .venv/bin/python tests/benchmarks/bench_post_floor.py [--seconds 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _harness import BareServer, base_env, median
from bench_auth_overhead import WRK_SCRIPT, run_wrk
from bench_verify import VERIFY_LUA

ROUTES = {"get": "/", "litestar_post": "/post", "raw_post": "/raw"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    args.secret = "unused"
    work = Path(tempfile.mkdtemp(prefix="bench_post_floor_"))
    scripts = {"get": work / "get.lua", "post": work / "post.lua"}
    scripts["get"].write_text(WRK_SCRIPT)
    scripts["post"].write_text(VERIFY_LUA % ("sk_rsv_" + "x" * 48) + WRK_SCRIPT)
    server = BareServer(base_env(), cpu=0, log_path=work / "server.log", factory="bare_app:create_post_app")
    rps: dict[str, list[float]] = {route: [] for route in ROUTES}
    try:
        server.wait_ready()
        for number in range(1, args.rounds + 1):
            for route, path in ROUTES.items():
                script = scripts["get" if route == "get" else "post"]
                measured = run_wrk(
                    "granian", route, server.url + path, seconds=args.seconds, args=args, script=script
                )
                if measured.non200 or measured.socket_errors:
                    print(f"FAIL: {route} had non-200 answers or socket errors", file=sys.stderr)
                    return 1
                rps[route].append(measured.rps)
                print(measured.line(number), flush=True)
    finally:
        server.stop()
    base = median(rps["get"])
    for route in ROUTES:
        middle = median(rps[route])
        print(f"{route:14} median {middle:9.1f} req/s  ratio to GET / {middle / base:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
