"""Per-account quotas shared by replicas through Redis, and what happens when Redis is gone."""

from __future__ import annotations

import os
import socket

import msgspec
import pytest
from structlog.testing import capture_logs

from reservekit.settings import Settings
from reservekit.web.app import create_app
from tests.web.conftest import create_key, make_account, serving

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_url() -> str:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return REDIS_URL
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Redis does not answer on 127.0.0.1:6379")
        pytest.skip("Redis is not running on 127.0.0.1:6379")


async def test_two_replicas_share_one_quota_through_redis(settings: Settings, redis_url: str) -> None:
    shared = msgspec.structs.replace(
        settings, redis_url=redis_url, plans={"free": 5, "pro": 600, "enterprise": 6000}
    )
    app_a, app_b = create_app(shared), create_app(shared)
    async with serving(app_a) as a, serving(app_b) as b:
        acme = await make_account(app_a.state.runtime)
        statuses = []
        for client in (a, b, a, b, a, b, a):
            response = await client.get("/v1/services", headers=acme.headers)
            statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 200, 200, 429, 429]
        last_ok = await b.get("/v1/services", headers=acme.headers)
        assert last_ok.headers["x-ratelimit-remaining"] == "0"


async def test_without_redis_each_replica_limits_on_its_own(settings: Settings) -> None:
    """The in-process default: two replicas, two quotas (what Redis is there to fix)."""
    local = msgspec.structs.replace(settings, plans={"free": 2, "pro": 600, "enterprise": 6000})
    app_a, app_b = create_app(local), create_app(local)
    async with serving(app_a) as a, serving(app_b) as b:
        acme = await make_account(app_a.state.runtime)
        key = await create_key(a, acme, name="k")  # spends one of A's two
        assert (await a.get("/v1/services", headers=key.headers)).status_code == 200
        assert (await a.get("/v1/services", headers=key.headers)).status_code == 429
        assert (await b.get("/v1/services", headers=key.headers)).status_code == 200


async def test_an_unreachable_redis_degrades_to_local_limits_and_says_so_once(settings: Settings) -> None:
    broken = msgspec.structs.replace(
        settings, redis_url="redis://127.0.0.1:1/0", plans={"free": 3, "pro": 600, "enterprise": 6000}
    )
    app = create_app(broken)
    async with serving(app) as client:
        acme = await make_account(app.state.runtime)
        with capture_logs() as logs:
            statuses = [
                (await client.get("/v1/services", headers=acme.headers)).status_code for _ in range(4)
            ]
    assert statuses == [200, 200, 200, 429]
    assert [entry["event"] for entry in logs].count("rate_limiter_unavailable") == 1
