"""The verify endpoint and the client middleware give the same answer for every SPEC §4 row.

One table: each row is a request (key, origin, endpoint scope) made three ways: straight to
``POST /v1/keys/verify``; through ``ReserveKitMiddleware`` in front of a separate small app while the
key is unknown there (so it asks the authority); and again once the middleware remembers the key (so it
judges locally with the same function and spends quota in the shared Redis limiter). All three must
agree on status, title and code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from reservekit.auth.decision import bearer_token
from reservekit.clock import FakeClock
from reservekit.keys.tokens import generate_secret
from reservekit.ratelimit import RedisRateLimiter
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.web.app import create_app
from reservekit_client import AsyncReserveKitClient
from reservekit_client.middleware import ReserveKitMiddleware
from tests.web.conftest import Caller, Client, create_key, make_account, serving

END_USER_IP = "198.51.100.9"
ROUTE_SCOPES = {"/read": frozenset({"services:read"}), "/write": frozenset({"services:write"})}


async def small_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The 'other service': answers 200 with the key id the middleware let through."""
    key = scope["state"]["reservekit_key"]
    body = msgspec.json.encode({"key_id": key.key_id})
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class Row:
    name: str
    authorization: Callable[[dict[str, Caller]], str | None]
    path: str = "/read"
    origin: str | None = None


ROWS = [
    Row("1 missing", lambda k: None),
    Row("2 not bearer", lambda k: "Basic dXNlcjpwYXNz"),
    Row("2 bad checksum", lambda k: "Bearer " + k["plain"].secret[:-1] + "!"),
    Row("3 unknown", lambda k: "Bearer " + UNKNOWN),
    Row("4 revoked", lambda k: "Bearer " + k["revoked"].secret),
    Row("5 expired", lambda k: "Bearer " + k["expiring"].secret),
    Row("6 origin", lambda k: "Bearer " + k["web"].secret, origin="https://evil.example"),
    Row("6 origin ok", lambda k: "Bearer " + k["web"].secret, origin="https://shop.example"),
    Row("7 scope", lambda k: "Bearer " + k["reader"].secret, path="/write"),
    Row("8 rate limited", lambda k: "Bearer " + k["busy"].secret),
    Row("ok", lambda k: "Bearer " + k["plain"].secret),
]
UNKNOWN = generate_secret()


@pytest.fixture
async def world(settings: Settings, clock: FakeClock) -> AsyncIterator[dict[str, Any]]:
    shared = msgspec.structs.replace(
        settings, redis_url="redis://127.0.0.1:6379/0", plans={"free": 2, "pro": 600, "enterprise": 6000}
    )
    authority = create_app(shared, clock=clock)
    async with serving(authority) as client:
        runtime: Runtime = authority.state.runtime
        ops = await make_account(runtime, "Ops", operator=True, plan="enterprise")
        acme = await make_account(runtime, "Acme", plan="pro")
        keys = await _keys(client, runtime, acme, clock)
        redis = Redis.from_url("redis://127.0.0.1:6379/0")
        to_authority = httpx.ASGITransport(app=authority, client=("10.0.0.5", 40_000))
        service = AsyncReserveKitClient("http://authority", ops.secret, transport=to_authority)
        middleware = ReserveKitMiddleware(
            small_app,
            authority=service,
            required_scopes=lambda scope: ROUTE_SCOPES[scope["path"]],
            limiter=RedisRateLimiter(redis),
            feed="poll",
            clock=clock.timestamp,
        )
        transport = httpx.ASGITransport(app=middleware, client=(END_USER_IP, 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as through:
            try:
                assert await middleware.follower.wait_healthy(10)
                yield {"client": client, "ops": ops, "keys": keys, "through": through, "mw": middleware}
            finally:
                await middleware.aclose()
                await service.aclose()
                await redis.aclose()


async def _keys(client: Client, runtime: Runtime, acme: Caller, clock: FakeClock) -> dict[str, Caller]:
    keys = {
        "plain": await create_key(client, acme, name="plain"),
        "revoked": await create_key(client, acme, name="revoked"),
        "expiring": await create_key(
            client, acme, name="expiring", expires_at=clock.now().replace(hour=13).isoformat()
        ),
        "web": await create_key(client, acme, name="web", domains=["shop.example"]),
        "reader": await create_key(client, acme, name="reader", scopes=["services:read"]),
    }
    busy = await make_account(runtime, "Busy", plan="free")
    keys["busy"] = busy
    revoked = await client.post(f"/v1/api-keys/{keys['revoked'].key_id}/revoke", headers=acme.headers)
    assert revoked.status_code == 200
    return keys


async def direct(world: dict[str, Any], row: Row) -> tuple[int, str, str]:
    token = bearer_token(row.authorization(world["keys"]))
    body: dict[str, object] = {"key": token, "required_scopes": sorted(ROUTE_SCOPES[row.path])}
    if row.origin:
        body["origin"] = row.origin
    body["client_ip"] = END_USER_IP
    response = await world["client"].post("/v1/keys/verify", json=body, headers=world["ops"].headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    return answer["status"], answer["title"], answer["code"]


async def through(world: dict[str, Any], row: Row) -> tuple[int, str, str]:
    headers = {}
    authorization = row.authorization(world["keys"])
    if authorization is not None:
        headers["Authorization"] = authorization
    if row.origin:
        headers["Origin"] = row.origin
    response = await world["through"].get(row.path, headers=headers)
    if response.status_code == 200:
        return 200, "API key is valid", "valid"
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    return response.status_code, body["title"], body["code"]


async def test_every_spec_row_answers_the_same_through_verify_and_the_middleware(
    world: dict[str, Any], clock: FakeClock
) -> None:
    clock.advance(3600)  # past the expiring key's expires_at
    # Spend the busy account's whole quota (2), so row 8 is refused everywhere.
    for _ in range(2):
        await world["client"].get("/v1/services", headers=world["keys"]["busy"].headers)
    seen: dict[str, tuple[int, str, str]] = {}
    for row in ROWS:
        expected = await direct(world, row)
        first = await through(world, row)  # unknown to the middleware: it asks the authority
        calls = world["mw"].verify_calls
        again = await through(world, row)  # remembered: judged locally (rows 1-2 never need a call)
        assert world["mw"].verify_calls - calls == (1 if row.name.startswith("3") else 0), row.name
        assert first == expected, row.name
        assert again == expected, row.name
        seen[row.name] = expected
    assert {code for _, _, code in seen.values()} == {
        "authorization_missing",
        "authorization_malformed",
        "api_key_invalid",
        "api_key_revoked",
        "api_key_expired",
        "origin_mismatch",
        "scope_denied",
        "rate_limited",
        "valid",
    }


async def test_a_known_key_costs_no_call_to_the_authority(world: dict[str, Any]) -> None:
    middleware: ReserveKitMiddleware = world["mw"]
    plain = world["keys"]["plain"]
    assert (await world["through"].get("/read", headers=plain.headers)).status_code == 200
    calls = middleware.verify_calls
    for _ in range(5):
        response = await world["through"].get("/read", headers=plain.headers)
        assert response.status_code == 200
        assert response.json() == {"key_id": plain.key_id}
    assert middleware.verify_calls == calls
    # Without a shared limiter the quota is spent through the verify call instead.
    middleware._limiter = None
    await world["through"].get("/read", headers=plain.headers)
    assert middleware.verify_calls == calls + 1


async def test_the_local_quota_is_the_authoritys_quota(world: dict[str, Any]) -> None:
    busy = world["keys"]["busy"]
    statuses = [(await world["through"].get("/read", headers=busy.headers)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    direct_call = await world["client"].get("/v1/services", headers=busy.headers)
    assert direct_call.status_code == 429  # the middleware spent the same Redis bucket


async def test_websockets_are_refused_not_let_through(world: dict[str, Any]) -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    await world["mw"]({"type": "websocket", "path": "/read", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
