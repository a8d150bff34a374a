"""The middleware in front of a separate small app, against a real authority on loopback.

A key revoked through the API is refused from the change feed, with no call to the authority (its
latency, target 100 ms, is measured by tests/benchmarks/bench_middleware_revocation.py); a feed cut by
stopping the authority loses no revocation (one made while it is down is applied when the feed resumes,
before memory is trusted).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from reservekit.ratelimit import RedisRateLimiter
from reservekit_client import AsyncReserveKitClient
from reservekit_client.middleware import ReserveKitMiddleware
from tests.client.conftest import REDIS_URL, LiveAuthority, Operator, first_refusal


async def small_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    key = scope["state"]["reservekit_key"]
    body = msgspec.json.encode({"key_id": key.key_id, "account_id": key.account_id})
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class Setup:
    owner: AsyncReserveKitClient
    middleware: ReserveKitMiddleware
    service: httpx.AsyncClient


@pytest.fixture
async def setup(authority: LiveAuthority, operator: Operator) -> AsyncIterator[Setup]:
    async with AsyncReserveKitClient(authority.url, operator.secret) as ops:
        opened = await ops.open_account("Acme", plan="enterprise")
    owner = AsyncReserveKitClient(authority.url, opened.key.secret)
    service_key = await owner.create_key(name="orders-service", scopes=["keys:verify"])
    redis = Redis.from_url(REDIS_URL)
    to_authority = AsyncReserveKitClient(authority.url, service_key.secret)
    middleware = ReserveKitMiddleware(
        small_app, authority=to_authority, required_scopes={"services:read"}, limiter=RedisRateLimiter(redis)
    )
    transport = httpx.ASGITransport(app=middleware, client=("198.51.100.9", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as service:
        try:
            assert await middleware.follower.wait_healthy(10)
            yield Setup(owner, middleware, service)
        finally:
            await middleware.aclose()
            await to_authority.aclose()
            await owner.aclose()
            await redis.aclose()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def known_key(setup: Setup) -> tuple[str, str]:
    """A fresh key, used once so the middleware remembers it; the second use costs no call."""
    key = await setup.owner.create_key(name="victim")
    assert (await setup.service.get("/", headers=bearer(key.secret))).status_code == 200
    calls = setup.middleware.verify_calls
    assert (await setup.service.get("/", headers=bearer(key.secret))).json()["key_id"] == key.id
    assert setup.middleware.verify_calls == calls
    return key.id, key.secret


async def refused_after(setup: Setup, secret: str, since: float, *, within: float = 10.0) -> float:
    """Seconds from ``since`` to the middleware's first 401 "API key revoked" for ``secret``."""
    response = await first_refusal(lambda: setup.service.get("/", headers=bearer(secret)), within=within)
    assert response.status_code != 200, f"still accepted {within}s after the revocation"
    assert response.status_code == 401
    assert response.json()["title"] == "API key revoked"
    return time.perf_counter() - since


async def test_a_key_revoked_through_the_api_is_refused_from_the_feed_without_a_call(setup: Setup) -> None:
    # How fast (the 100 ms target) is measured by tests/benchmarks/bench_middleware_revocation.py, not
    # asserted here: a timed assertion fails on a loaded machine and proves nothing on a quiet one.
    for _ in range(5):
        key_id, secret = await known_key(setup)
        await setup.owner.revoke_key(key_id)
        calls = setup.middleware.verify_calls
        await refused_after(setup, secret, time.perf_counter())
        # The feed marked the remembered key revoked: refusing it cost no call.
        assert setup.middleware.verify_calls == calls


async def test_a_feed_disconnect_loses_no_revocation(setup: Setup, authority: LiveAuthority) -> None:
    key_id, secret = await known_key(setup)
    other_id, other_secret = await known_key(setup)
    cache = setup.middleware.cache
    assert cache.get(cache.digest(secret)) is not None
    authority.stop()
    for _ in range(200):
        if not setup.middleware.follower.healthy:
            break
        await asyncio.sleep(0.01)
    assert not setup.middleware.follower.healthy
    # Memory is not trusted while the feed is down: the key is not let through from the cache.
    assert (await setup.service.get("/", headers=bearer(secret))).status_code == 503
    authority.cli("keys", "revoke", key_id)  # straight into the log while no server runs
    authority.start()  # same port, same database
    assert await setup.middleware.follower.wait_healthy(15)
    # The feed resumed after its last position and applied the revocation before saying "caught up".
    remembered = cache.get(cache.digest(secret))
    assert remembered is not None
    assert remembered.revoked
    assert not cache.get(cache.digest(other_secret)).revoked  # type: ignore[union-attr]
    calls = setup.middleware.verify_calls
    response = await setup.service.get("/", headers=bearer(secret))
    assert (response.status_code, response.json()["title"]) == (401, "API key revoked")
    assert (await setup.service.get("/", headers=bearer(other_secret))).json()["key_id"] == other_id
    assert setup.middleware.verify_calls == calls  # both answered from memory
