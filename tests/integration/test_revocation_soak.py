"""A randomized two-replica soak on PostgreSQL: no revoked or rotated-out key is served late (issue 16).

Two app instances share one database and poll only every 5 s, so what reaches a replica sooner came
through LISTEN/NOTIFY or its own appends. Each round makes a key, uses it on both replicas, then at
the same moment revokes (or rotates with no grace) it on one replica while the other appends keys of
its own, the interleaving that once made a replica skip the revocation for good. Both replicas are
probed with the key throughout; no request sent more than 100 ms after the revoke response may be
answered 200. Bounded by RESERVEKIT_SOAK_SECONDS (default 25).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from reservekit.settings import Settings
from reservekit.web.app import create_app
from tests.conftest import TEST_PEPPER
from tests.web.conftest import Caller, Client, create_key, make_account, serving

SOAK_SECONDS = float(os.environ.get("RESERVEKIT_SOAK_SECONDS", "25"))
PROPAGATION_TARGET = 0.100
UNLIMITED = {"free": 1_000_000, "pro": 1_000_000, "enterprise": 1_000_000}


@dataclass
class Tally:
    rounds: int = 0
    revocations: int = 0
    rotations: int = 0
    requests: int = 0
    late_200s: list[str] = field(default_factory=list)


async def _probe(client: Client, key: Caller, stop: asyncio.Event, seen: list[tuple[float, int]]) -> None:
    while not stop.is_set():
        sent = time.perf_counter()
        response = await client.get("/v1/services", headers=key.headers)
        seen.append((sent, response.status_code))
        await asyncio.sleep(random.uniform(0, 0.003))


async def _round(replicas: list[Client], admin: Caller, tally: Tally) -> None:
    writer, other = random.sample(replicas, 2)
    key = await create_key(random.choice(replicas), admin, name="soak")
    for client in replicas:
        assert (await client.get("/v1/services", headers=key.headers)).status_code == 200

    stop = asyncio.Event()
    seen: dict[int, list[tuple[float, int]]] = {0: [], 1: []}
    probes = [asyncio.create_task(_probe(c, key, stop, seen[n])) for n, c in enumerate(replicas)]
    rotate = random.random() < 0.3
    done_at = 0.0

    async def take_it_away() -> None:
        nonlocal done_at
        await asyncio.sleep(random.uniform(0, 0.004))
        if rotate:
            response = await writer.post(
                f"/v1/api-keys/{key.key_id}/rotate", json={"grace_period_seconds": 0}, headers=admin.headers
            )
            assert response.status_code == 201, response.text
        else:
            response = await writer.post(f"/v1/api-keys/{key.key_id}/revoke", headers=admin.headers)
            assert response.status_code == 200, response.text
        done_at = time.perf_counter()

    async def append_elsewhere() -> None:
        await asyncio.sleep(random.uniform(0, 0.003))
        await asyncio.gather(*(create_key(other, admin, name="bystander") for _ in range(3)))

    await asyncio.gather(take_it_away(), append_elsewhere())
    await asyncio.sleep(PROPAGATION_TARGET * 2)
    stop.set()
    await asyncio.gather(*probes)

    tally.rounds += 1
    tally.rotations += rotate
    tally.revocations += not rotate
    for replica, answers in seen.items():
        tally.requests += len(answers)
        for sent, status in answers:
            if status == 200 and sent > done_at + PROPAGATION_TARGET:
                tally.late_200s.append(
                    f"round {tally.rounds}: replica {replica} answered 200 "
                    f"{(sent - done_at) * 1000:.0f} ms after the {'rotation' if rotate else 'revocation'}"
                )


async def test_no_revoked_key_is_served_late_by_either_replica(postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=postgres_url,
        key_pepper=TEST_PEPPER,
        poll_interval_seconds=5.0,
        plans=UNLIMITED,
        failed_auth_per_ip_per_minute=1_000_000,
    )
    app_a, app_b = create_app(settings), create_app(settings)
    tally = Tally()
    async with serving(app_a) as a, serving(app_b) as b:
        for app in (app_a, app_b):
            listener = next(
                t for t in app.state.runtime._background if type(t).__name__ == "PostgresListener"
            )
            await asyncio.wait_for(listener.connected.wait(), 5)
        admin = await make_account(app_a.state.runtime, "Soak", plan="enterprise")
        deadline = time.perf_counter() + SOAK_SECONDS
        while time.perf_counter() < deadline:
            await _round([a, b], admin, tally)
    print(
        f"\nsoak: {tally.rounds} rounds, {tally.revocations} revocations, {tally.rotations} rotations, "
        f"{tally.requests} probe requests, {len(tally.late_200s)} late 200s"
    )
    assert tally.rounds >= 10
    assert tally.late_200s == []
