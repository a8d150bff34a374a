"""Keys over HTTP: show once, listing, revoke (idempotent), rotate with a grace period, races."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from reservekit.clock import FakeClock
from reservekit.runtime import Runtime
from tests.web.conftest import Caller, Client, create_key, event_count, problem


async def test_secret_is_shown_once_and_never_stored(client: Client, acme: Caller, runtime: Runtime) -> None:
    created = await client.post("/v1/api-keys", json={"name": "backend"}, headers=acme.headers)
    assert created.status_code == 201
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("sk_rsv_")
    assert len(secret) == 45
    assert body["prefix"] == secret[:11]
    assert body["last4"] == secret[-4:]
    read = await client.get(f"/v1/api-keys/{body['id']}", headers=acme.headers)
    listing = await client.get("/v1/api-keys", headers=acme.headers)
    for response in (read, listing):
        assert response.status_code == 200
        assert "secret" not in response.text
        assert secret not in response.text
    async with runtime.engine.connect() as conn:
        stored = " ".join(str(v) for row in await conn.execute(text("SELECT * FROM events")) for v in row)
        keys_table = " ".join(
            str(v) for row in await conn.execute(text("SELECT * FROM proj_api_keys")) for v in row
        )
    assert secret not in stored
    assert secret[7:] not in stored
    assert secret not in keys_table
    assert runtime.application.deps.hasher.digest(secret) in stored


async def test_key_objects_carry_status_and_lifecycle_fields(client: Client, acme: Caller) -> None:
    key = (await client.get(f"/v1/api-keys/{acme.key_id}", headers=acme.headers)).json()
    assert key["status"] == "active"
    for field in ("created_at", "revoked_at", "expires_at", "last_used_at", "rotated_from", "rotated_to"):
        assert field in key
    assert key["scopes"] == sorted(
        [
            "services:read",
            "services:write",
            "keys:read",
            "keys:write",
            "usage:read",
            "audit:read",
            "webhooks:read",
            "webhooks:write",
        ]
    )


async def test_listing_pages_with_a_cursor(client: Client, acme: Caller) -> None:
    for n in range(4):
        await create_key(client, acme, name=f"k{n}")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/api-keys", params=params, headers=acme.headers)).json()
        assert len(page["data"]) <= 2
        seen += [k["id"] for k in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 == len(set(seen))
    assert seen == sorted(seen)


async def test_revoking_twice_is_a_no_op_200_without_a_new_event(
    client: Client, acme: Caller, runtime: Runtime
) -> None:
    other = await create_key(client, acme, name="x")
    first = await client.post(
        f"/v1/api-keys/{other.key_id}/revoke", json={"reason": "leaked"}, headers=acme.headers
    )
    assert first.status_code == 200
    assert first.json()["status"] == "revoked"
    before = await event_count(runtime)
    again = await client.post(f"/v1/api-keys/{other.key_id}/revoke", headers=acme.headers)
    assert again.status_code == 200
    assert again.json()["revoked_at"] == first.json()["revoked_at"]
    assert await event_count(runtime) == before


async def test_rotation_keeps_the_old_key_until_the_grace_end(
    client: Client, acme: Caller, clock: FakeClock
) -> None:
    old = await create_key(
        client, acme, name="api", domains=["app.example.com"], scopes=["services:read", "keys:read"]
    )
    rotated = await client.post(
        f"/v1/api-keys/{old.key_id}/rotate", json={"grace_period_seconds": 3600}, headers=acme.headers
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["secret"] != old.secret
    assert (new["name"], new["domains"], new["scopes"]) == (
        "api",
        ["app.example.com"],
        ["keys:read", "services:read"],
    )
    assert new["rotated_from"] == old.key_id
    origin = {"Origin": "https://app.example.com"}
    old_headers = {**old.headers, **origin}
    new_headers = {"Authorization": f"Bearer {new['secret']}", **origin}
    assert (await client.get("/v1/services", headers=old_headers)).status_code == 200
    old_view = (await client.get(f"/v1/api-keys/{old.key_id}", headers=acme.headers)).json()
    assert old_view["rotated_to"] == new["id"]
    assert old_view["status"] == "active"
    assert old_view["expires_at"] == "2026-06-01T13:00:00Z"
    clock.advance(3599)
    assert (await client.get("/v1/services", headers=old_headers)).status_code == 200
    clock.advance(1)
    expired = await client.get("/v1/services", headers=old_headers)
    assert problem(expired)["title"] == "API key expired"
    assert (await client.get("/v1/services", headers=new_headers)).status_code == 200
    assert (await client.get(f"/v1/api-keys/{old.key_id}", headers=acme.headers)).json()[
        "status"
    ] == "expired"


async def test_rotation_with_no_grace_expires_the_old_key_at_once(client: Client, acme: Caller) -> None:
    old = await create_key(client, acme, name="api")
    assert (await client.post(f"/v1/api-keys/{old.key_id}/rotate", headers=acme.headers)).status_code == 201
    assert problem(await client.get("/v1/services", headers=old.headers))["code"] == "api_key_expired"


async def test_a_revoked_or_rotated_key_cannot_be_rotated(
    client: Client, acme: Caller, runtime: Runtime
) -> None:
    revoked = await create_key(client, acme, name="r")
    await client.post(f"/v1/api-keys/{revoked.key_id}/revoke", headers=acme.headers)
    rotated = await create_key(client, acme, name="o")
    await client.post(
        f"/v1/api-keys/{rotated.key_id}/rotate", json={"grace_period_seconds": 60}, headers=acme.headers
    )
    before = await event_count(runtime)
    for key in (revoked, rotated):
        response = await client.post(f"/v1/api-keys/{key.key_id}/rotate", headers=acme.headers)
        assert response.status_code == 409
    assert await event_count(runtime) == before


@pytest.mark.parametrize("grace", [-1, 604_801, "soon", 1.5])
async def test_bad_grace_periods_are_refused_naming_the_field(
    client: Client, acme: Caller, runtime: Runtime, grace: object
) -> None:
    before = await event_count(runtime)
    response = await client.post(
        f"/v1/api-keys/{acme.key_id}/rotate", json={"grace_period_seconds": grace}, headers=acme.headers
    )
    assert response.status_code == 422
    assert problem(response)["field"] == "grace_period_seconds"
    assert await event_count(runtime) == before


async def test_concurrent_rotations_have_one_winner_and_the_rest_get_409(
    client: Client, acme: Caller, runtime: Runtime
) -> None:
    target = await create_key(client, acme, name="contested")
    before = await event_count(runtime)
    responses = await asyncio.gather(
        *(
            client.post(
                f"/v1/api-keys/{target.key_id}/rotate",
                json={"grace_period_seconds": 60},
                headers=acme.headers,
            )
            for _ in range(6)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409, 409]
    assert await event_count(runtime) == before + 2  # one KeyRotated + one KeyCreated


async def test_a_revoke_racing_a_rotation_loses_with_409_and_writes_nothing(
    client: Client, acme: Caller, runtime: Runtime
) -> None:
    """Both read the key at the same version; the second append is refused by optimistic concurrency."""
    target = await create_key(client, acme, name="contested")
    store = runtime.store
    original = store.read_stream
    both_read = asyncio.Barrier(2)
    reads = 0

    async def read_then_wait(stream_id: str):  # type: ignore[no-untyped-def]
        nonlocal reads
        events = await original(stream_id)
        if stream_id == target.key_id and reads < 2:
            reads += 1
            await asyncio.wait_for(both_read.wait(), 5)
        return events

    store.read_stream = read_then_wait  # type: ignore[method-assign]
    try:
        rotate, revoke = await asyncio.gather(
            client.post(f"/v1/api-keys/{target.key_id}/rotate", headers=acme.headers),
            client.post(f"/v1/api-keys/{target.key_id}/revoke", headers=acme.headers),
        )
    finally:
        store.read_stream = original  # type: ignore[method-assign]
    assert sorted([rotate.status_code, revoke.status_code]) in ([200, 409], [201, 409])
    loser = rotate if rotate.status_code == 409 else revoke
    assert problem(loser)["code"] == "conflict"
    assert len(await store.read_stream(target.key_id)) == 2
