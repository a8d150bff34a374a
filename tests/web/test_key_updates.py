"""PATCH /v1/api-keys/{id} (issue 9): change a key without replacing it; it holds on every replica."""

from __future__ import annotations

import asyncio

from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.web.app import create_app
from tests.web.conftest import Caller, Client, create_key, event_count, make_account, problem, serving


async def test_only_the_fields_sent_change_and_the_change_is_an_event(
    client: Client, runtime: Runtime, acme: Caller
) -> None:
    key = await create_key(client, acme, name="ci", domains=["app.example.com"], scopes=["services:read"])
    written = await event_count(runtime)
    response = await client.patch(
        f"/v1/api-keys/{key.key_id}", json={"name": "deploys"}, headers=acme.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["domains"], body["scopes"]) == (
        "deploys",
        ["app.example.com"],
        ["services:read"],
    )
    assert "secret" not in body
    assert await event_count(runtime) == written + 1
    events = (
        await client.get("/v1/audit/events", params={"stream_id": key.key_id}, headers=acme.headers)
    ).json()
    assert events["data"][-1]["type"] == "key_updated"


async def test_narrowed_scopes_and_domains_hold_on_another_replica_by_its_next_poll(
    settings: Settings,
) -> None:
    app_a, app_b = create_app(settings), create_app(settings)
    async with serving(app_a) as a, serving(app_b) as b:
        # Enterprise: polling B below must not spend a free plan's 60 a minute before B sees the change.
        acme = await make_account(app_a.state.runtime, plan="enterprise")
        key = await create_key(a, acme, name="shop")
        origin = {"Origin": "https://shop.example.com"}
        assert (await b.get("/v1/services", headers={**key.headers, **origin})).status_code == 200
        patched = await a.patch(
            f"/v1/api-keys/{key.key_id}", json={"domains": ["other.example.com"]}, headers=acme.headers
        )
        assert patched.status_code == 200
        assert (await a.get("/v1/services", headers={**key.headers, **origin})).status_code == 403
        # B learns of the change by NOTIFY on PostgreSQL, by its next poll (50 ms here) on SQLite: ask
        # until then, pausing between requests (a tight loop can finish inside one poll interval).
        for _ in range(500):
            refused = await b.get("/v1/services", headers={**key.headers, **origin})
            if refused.status_code == 403:
                break
            await asyncio.sleep(0.01)
        assert problem(refused)["title"] == "Origin does not match API key domain"


async def test_bad_updates_are_refused_and_write_nothing(
    client: Client, runtime: Runtime, acme: Caller
) -> None:
    key = await create_key(client, acme, name="ci", scopes=["services:read"])
    other = await make_account(runtime, "Globex")
    written = await event_count(runtime)
    for body, status, field in (
        ({"domains": ["*.com"]}, 422, "domains"),
        ({"scopes": ["platform:admin"]}, 422, "scopes"),
        ({"name": "   "}, 422, "name"),
        ({"colour": "blue"}, 422, "colour"),
        ({"expires_at": "tomorrow"}, 422, "expires_at"),
    ):
        response = await client.patch(f"/v1/api-keys/{key.key_id}", json=body, headers=acme.headers)
        assert response.status_code == status, (body, response.text)
        assert problem(response)["field"] == field
    hidden = await client.patch(f"/v1/api-keys/{other.key_id}", json={"name": "x"}, headers=acme.headers)
    assert hidden.status_code == 404
    assert await event_count(runtime) == written
