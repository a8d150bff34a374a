"""A Redis of the test's own (spare port) hung with SIGSTOP, then killed: requests stop waiting on it
after three failures and keep being answered with local limits; when it is back, a background probe
returns the replica to the shared quota. The shared Redis on 6379 is never touched."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from redis.asyncio import Redis

from reservekit.ratelimit.breaker import CircuitBreakerLimiter
from reservekit.settings import Settings
from reservekit.web.app import create_app
from tests.faults.servers import free_port
from tests.web.conftest import Caller, Client, make_account, serving

pytestmark = pytest.mark.faults


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; the fault suite needs it")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            subprocess.run(["redis-cli", "-p", str(port), "ping"], check=True, capture_output=True, timeout=2)
            break
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            time.sleep(0.05)
    yield url, process
    if process.poll() is None:
        os.kill(process.pid, signal.SIGCONT)
        process.kill()
    process.wait(timeout=10)


async def timed(client: Client, caller: Caller, count: int) -> tuple[list[int], list[float]]:
    statuses, latencies = [], []
    for _ in range(count):
        started = time.perf_counter()
        response = await client.get("/v1/services", headers=caller.headers)
        latencies.append(time.perf_counter() - started)
        statuses.append(response.status_code)
    return statuses, latencies


async def shared_buckets(url: str) -> int:
    redis = Redis.from_url(url)
    try:
        return len(await redis.keys("reservekit:rl:acct:*"))
    finally:
        await redis.aclose()


@pytest.mark.parametrize("fault", ["hung", "killed"])
async def test_a_hung_or_dead_redis_costs_three_requests_then_nothing(
    settings: Settings, own_redis: tuple[str, subprocess.Popen[bytes]], fault: str
) -> None:
    url, process = own_redis
    app = create_app(msgspec.structs.replace(settings, redis_url=url))
    async with serving(app) as client:
        runtime = app.state.runtime
        breaker = runtime.rate_limiter
        assert isinstance(breaker, CircuitBreakerLimiter)
        breaker._probe_interval = 0.2  # probe often, so the test stays short
        acme = await make_account(runtime, plan="free")  # 60/min: the bucket lives for seconds
        statuses, _ = await timed(client, acme, 5)
        assert statuses == [200] * 5
        assert await shared_buckets(url) == 1

        if fault == "hung":
            os.kill(process.pid, signal.SIGSTOP)
        else:
            process.kill()
            process.wait(timeout=10)
        statuses, latencies = await timed(client, acme, 40)
        assert statuses == [200] * 40  # served on local limits, never refused for Redis
        slow = [t for t in latencies if t >= 0.2]
        print(f"{fault}: {len(slow)} slow requests, median {statistics.median(latencies) * 1000:.1f} ms")
        assert len(slow) <= 3
        assert statistics.median(latencies) < 0.05
        assert breaker.is_open

        if fault == "hung":
            os.kill(process.pid, signal.SIGCONT)
            for _ in range(50):
                await asyncio.sleep(0.1)
                if not breaker.is_open:
                    break
            assert not breaker.is_open  # back to the shared quota without a restart
            before = breaker.short_circuited
            statuses, _ = await timed(client, acme, 3)
            assert statuses == [200] * 3
            assert breaker.short_circuited == before
