"""A PostgreSQL of the test's own restarted, then stopped for 8 s, under a bounded load on a real server.

Asserts, per fault: no 500 (or any 5xx other than 503); every 503 carries ``Retry-After``; answers
succeed again after the database is back, without restarting the server; and after a graceful stop,
every answered request has exactly one usage row (rows lost: 0).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from reservekit.db import create_engine
from reservekit.usage.records import usage_log
from tests.faults.servers import OwnPostgres, Server, cli, server_env

pytestmark = pytest.mark.faults
CLIENTS = 6
OUTAGE_SECONDS = 8.0


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    cluster = OwnPostgres(Path(tempfile.mkdtemp(prefix="rk-fault-pg-", dir="/tmp")))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@dataclass
class Tally:
    answered: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    unavailable_without_retry_after: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    ok_at: list[float] = field(default_factory=list)


async def load(url: str, secret: str, stop: asyncio.Event, tally: Tally, prefix: str) -> None:
    """Each client alternates a read and a write that both need the database."""
    headers = {"Authorization": f"Bearer {secret}"}

    async def client(number: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            sequence = 0
            while not stop.is_set():
                sequence += 1
                request_id = f"{prefix}-{number}-{sequence}"
                call = {"headers": headers | {"X-Request-Id": request_id}}
                try:
                    if sequence % 2:
                        response = await http.get("/v1/services", **call)
                    else:
                        body = {"name": f"s{sequence}", "duration_minutes": 30}
                        response = await http.post("/v1/services", json=body, **call)
                except httpx.HTTPError as exc:
                    tally.errors[type(exc).__name__] += 1
                    await asyncio.sleep(0.05)
                    continue
                tally.answered.append(request_id)
                tally.statuses[response.status_code] += 1
                if response.status_code == 503 and "retry-after" not in response.headers:
                    tally.unavailable_without_retry_after += 1
                if response.status_code < 300:
                    tally.ok_at.append(time.monotonic())
                await asyncio.sleep(0.01)

    await asyncio.gather(*(client(n) for n in range(CLIENTS)))


async def usage_rows(database_url: str, prefix: str) -> Counter[str]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(select(usage_log.c.request_id))
            return Counter(r.request_id for r in result if r.request_id.startswith(prefix + "-"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("fault", ["restart", "outage"])
async def test_postgres_going_away_under_load(own_postgres: OwnPostgres, tmp_path: Path, fault: str) -> None:
    database = f"rk_{fault}"
    own_postgres.create_database(database)
    database_url = own_postgres.url(database)
    env = server_env(database_url, tmp_path / "data", RESERVEKIT_PLANS="enterprise=1000000")
    cli(env, "migrate")
    secret = json.loads(
        cli(env, "accounts", "create", "--name", "F", "--plan", "enterprise", "--json").stdout
    )["key"]["secret"]
    server = Server(env, tmp_path / "server.log")
    tally, stop = Tally(), asyncio.Event()
    try:
        server.wait_ready()
        loading = asyncio.create_task(load(server.url, secret, stop, tally, fault))
        await asyncio.sleep(1.0)
        back_at = time.monotonic()
        if fault == "restart":
            await asyncio.to_thread(own_postgres.restart)
            back_at = time.monotonic()
        else:
            await asyncio.to_thread(own_postgres.stop)
            await asyncio.sleep(OUTAGE_SECONDS)
            away = tally.statuses[503]
            await asyncio.to_thread(own_postgres.start)
            back_at = time.monotonic()
            assert away > 0, "no 503 while the database was stopped"
        # Recovery without a restart of the server: successes again soon after the database is back.
        deadline = back_at + 15
        while time.monotonic() < deadline and not any(t > back_at for t in tally.ok_at):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        recovered_after = min((t for t in tally.ok_at if t > back_at), default=back_at + 99) - back_at
        await asyncio.sleep(1.0)
        stop.set()
        await loading
    finally:
        stop.set()
        server.stop()  # graceful: the usage writer drains what it holds
    after_stop = await usage_rows(database_url, fault)
    # Rows the server could not write before it stopped (its shutdown may be cut short on a loaded
    # machine) stay in its spool; the next start of anything on this data directory inserts them.
    cli(env, "projections", "status")
    rows = await usage_rows(database_url, fault)
    replayed = sum(rows.values()) - sum(after_stop.values())
    lost = [rid for rid in tally.answered if rows[rid] == 0]
    duplicated = [rid for rid, n in rows.items() if n > 1]
    print(
        f"{fault}: answered {len(tally.answered)} {dict(tally.statuses)}, transport errors "
        f"{dict(tally.errors)}, recovered {recovered_after:.2f} s after the database was back, "
        f"rows replayed from the spool {replayed}, lost {len(lost)}, duplicated {len(duplicated)}"
    )
    assert {status for status in tally.statuses if status >= 500} <= {503}
    assert tally.unavailable_without_retry_after == 0
    assert recovered_after < 10, "no success after the database came back"
    assert lost == []
    assert duplicated == []
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log
    assert "unhandled_error" not in log
