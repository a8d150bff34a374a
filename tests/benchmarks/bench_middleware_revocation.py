"""Middleware revocation latency (issue 15): how soon ``ReserveKitMiddleware`` refuses a key revoked
through the API, while that key is remembered there (so it costs no call until the feed says otherwise).

One real ``reservekit serve`` (Granian, embedded SQLite in a temp dir, Redis for shared quotas); the
"other service" is a small ASGI app behind the middleware in this process, driven in-process (as its own
server would), its authority client on loopback. Each iteration: create a key through the API, use it
twice through the middleware (the second use must cost no verify call), revoke it through the API, then
request through the middleware every 0.5 ms until it answers 401 "API key revoked". Reports p50/p95/p99/
max of revoke response -> first refusal, and of revoke response -> the feed marking the remembered key
revoked (often before the revoke response arrives: then 0), of revoke *sent* -> first refusal (includes
the revoke call itself), and how many refusals cost no verify call.

    .venv/bin/python tests/benchmarks/bench_middleware_revocation.py [--iterations 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _harness import Server, base_env, cli, percentile
from redis.asyncio import Redis

from reservekit.ratelimit import RedisRateLimiter
from reservekit_client import AsyncReserveKitClient
from reservekit_client.middleware import ReserveKitMiddleware

TARGET_MS = 100.0
REDIS_URL = "redis://127.0.0.1:6379/0"


async def small_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def run(url: str, owner_secret: str, iterations: int) -> dict[str, list[float]]:
    owner = AsyncReserveKitClient(url, owner_secret)
    service_key = await owner.create_key(name="bench-service", scopes=["keys:verify"])
    authority = AsyncReserveKitClient(url, service_key.secret)
    redis = Redis.from_url(REDIS_URL)
    middleware = ReserveKitMiddleware(small_app, authority=authority, limiter=RedisRateLimiter(redis))
    transport = httpx.ASGITransport(app=middleware, client=("198.51.100.9", 1234))
    refused: list[float] = []
    marked: list[float] = []
    from_sent: list[float] = []
    answered_by_memory = 0
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as service:
            if not await middleware.follower.wait_healthy(10):
                raise RuntimeError("the change feed did not connect")
            for _ in range(iterations):
                key = await owner.create_key(name="victim")
                headers = {"Authorization": f"Bearer {key.secret}"}
                assert (await service.get("/", headers=headers)).status_code == 200
                calls = middleware.verify_calls
                assert (await service.get("/", headers=headers)).status_code == 200
                assert middleware.verify_calls == calls, "a remembered key cost a verify call"
                digest = middleware.cache.digest(key.secret)
                sent = time.perf_counter()
                await owner.revoke_key(key.id)
                since = time.perf_counter()
                while True:
                    known = middleware.cache.get(digest)
                    if (known is None or known.revoked) and len(marked) < len(refused) + 1:
                        marked.append((time.perf_counter() - since) * 1000)
                    response = await service.get("/", headers=headers)
                    if response.status_code == 401:
                        refused.append((time.perf_counter() - since) * 1000)
                        from_sent.append((time.perf_counter() - sent) * 1000)
                        if len(marked) < len(refused):
                            marked.append(refused[-1])
                        answered_by_memory += middleware.verify_calls == calls
                        break
                    if time.perf_counter() - since > 5:
                        raise RuntimeError("a revoked key was still accepted after 5 s")
                    await asyncio.sleep(0.0005)
    finally:
        await middleware.aclose()
        await authority.aclose()
        await owner.aclose()
        await redis.aclose()
    print(f"{answered_by_memory}/{iterations} refusals came from memory (no verify call)")
    return {"refused_ms": refused, "feed_ms": marked, "from_sent_ms": from_sent}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_mw_revocation_"))
    try:
        env = base_env(RESERVEKIT_DATA_DIR=str(work / "data"), RESERVEKIT_REDIS_URL=REDIS_URL)
        created = cli(env, "accounts", "create", "--name", "bench", "--plan", "enterprise", "--json")
        server = Server("granian", env, cpu=None, log_path=work / "server.log")
        try:
            server.wait_ready()
            started = time.monotonic()
            results = asyncio.run(run(server.url, created["key"]["secret"], args.iterations))
            elapsed = time.monotonic() - started
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.iterations} iterations in {elapsed:.1f} s")
    for name, values in results.items():
        print(
            f"  {name:11} p50 {percentile(values, 50):7.2f}  p95 {percentile(values, 95):7.2f}"
            f"  p99 {percentile(values, 99):7.2f}  max {max(values):7.2f} ms"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    p99 = percentile(results["refused_ms"], 99)
    print(f"revocation refused p99 {p99:.2f} ms ({'meets' if p99 <= TARGET_MS else 'MISSES'} {TARGET_MS} ms)")
    return 0 if p99 <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
