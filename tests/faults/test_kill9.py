"""U1 for real: ``kill -9`` of a serving process under load loses no answered request's usage row.

A real ``reservekit serve`` answers a bounded load (16 concurrent clients, about 1.5 s, loopback);
the whole process group is killed with SIGKILL mid-load; a new server on the same data directory
replays the spool at start. Every answered request must then have exactly one usage row.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from reservekit.db import create_engine
from reservekit.usage.records import usage_log
from tests.faults.servers import Server, cli, server_env

pytestmark = pytest.mark.faults
CLIENTS = 16
LOAD_SECONDS = 2.0


async def load(url: str, secret: str, seconds: float) -> tuple[list[str], int]:
    """Requests with our own X-Request-Id until ``seconds`` pass or the server dies; answered ids."""
    answered: list[str] = []
    failed = 0
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {secret}"}

    async def client(number: int) -> None:
        nonlocal failed
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            sequence = 0
            while time.monotonic() < deadline:
                sequence += 1
                request_id = f"kill9-{number}-{sequence}"
                try:
                    response = await http.get("/v1/services", headers=headers | {"X-Request-Id": request_id})
                except httpx.HTTPError:
                    failed += 1
                    await asyncio.sleep(0.01)
                    continue
                assert response.status_code in (200, 429), response.text
                answered.append(request_id)

    await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    return answered, failed


async def stored_request_ids(database_url: str) -> Counter[str]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(select(usage_log.c.request_id))
            return Counter(r.request_id for r in result if r.request_id.startswith("kill9-"))
    finally:
        await engine.dispose()


async def test_kill_9_under_load_loses_no_answered_usage_row(database_url: str, tmp_path: Path) -> None:
    env = server_env(database_url, tmp_path / "data")
    created = cli(env, "accounts", "create", "--name", "Load", "--plan", "enterprise", "--json")
    secret = json.loads(created.stdout)["key"]["secret"]

    first = Server(env, tmp_path / "server.log")
    try:
        first.wait_ready()
        # One request first: the key is then in the server's memory before the clock of the load starts.
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as warm:
            warmed = await warm.get("/v1/services", headers={"Authorization": f"Bearer {secret}"})
            assert warmed.status_code == 200, warmed.text
        loading = asyncio.create_task(load(first.url, secret, LOAD_SECONDS + 1.0))
        await asyncio.sleep(LOAD_SECONDS)
        await asyncio.to_thread(first.kill)
        answered, _failed = await loading
    finally:
        first.kill()
    assert len(answered) > 20, "the load did not get going"
    before_replay = await stored_request_ids(database_url)

    second = Server(env, tmp_path / "server.log")
    try:
        second.wait_ready()  # the spool is replayed before the server answers
        stored = await stored_request_ids(database_url)
    finally:
        second.stop()

    lost = [request_id for request_id in answered if stored[request_id] == 0]
    duplicated = [request_id for request_id, count in stored.items() if count > 1]
    print(
        f"answered {len(answered)}, in the database before replay {sum(before_replay.values())}, "
        f"after {sum(stored.values())}, lost {len(lost)}, duplicated {len(duplicated)}"
    )
    assert len(answered) > sum(before_replay.values()), "the kill came after everything was flushed"
    assert lost == []
    assert duplicated == []
