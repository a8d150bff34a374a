"""Operators open accounts over the API; services are per account CRUD behind the keys."""

from __future__ import annotations

from reservekit.runtime import Runtime
from tests.web.conftest import Caller, Client, event_count, problem


async def test_operators_open_accounts_with_a_first_key(client: Client, operator: Caller) -> None:
    response = await client.post(
        "/v1/accounts", json={"name": "Initech", "plan": "pro"}, headers=operator.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["account"]["plan"] == "pro"
    assert body["account"]["operator"] is False
    new_key = {"Authorization": f"Bearer {body['key']['secret']}"}
    assert (await client.get("/v1/services", headers=new_key)).status_code == 200
    assert "platform:admin" not in body["key"]["scopes"]
    read = await client.get(f"/v1/accounts/{body['account']['id']}", headers=operator.headers)
    assert read.json()["name"] == "Initech"


async def test_integrators_cannot_open_accounts(client: Client, acme: Caller, runtime: Runtime) -> None:
    before = await event_count(runtime)
    response = await client.post("/v1/accounts", json={"name": "Sneaky"}, headers=acme.headers)
    assert response.status_code == 403
    assert problem(response)["code"] == "scope_denied"
    assert await event_count(runtime) == before


async def test_unknown_plan_is_refused(client: Client, operator: Caller, runtime: Runtime) -> None:
    before = await event_count(runtime)
    response = await client.post(
        "/v1/accounts", json={"name": "X", "plan": "platinum"}, headers=operator.headers
    )
    assert response.status_code == 422
    assert problem(response)["field"] == "plan"
    assert await event_count(runtime) == before


async def test_a_plan_change_takes_effect_without_a_restart(
    client: Client, operator: Caller, acme: Caller
) -> None:
    before = await client.get("/v1/services", headers=acme.headers)
    assert before.headers["x-ratelimit-limit"] == "60"
    changed = await client.patch(
        f"/v1/accounts/{acme.account_id}", json={"plan": "pro"}, headers=operator.headers
    )
    assert changed.status_code == 200
    assert changed.json()["plan"] == "pro"
    after = await client.get("/v1/services", headers=acme.headers)
    assert after.headers["x-ratelimit-limit"] == "600"


async def test_services_crud(client: Client, acme: Caller) -> None:
    created = await client.post(
        "/v1/services",
        json={"name": "Haircut", "duration_minutes": 30, "description": "Wash and cut"},
        headers=acme.headers,
    )
    assert created.status_code == 201
    service = created.json()
    path = f"/v1/services/{service['id']}"
    assert (await client.get(path, headers=acme.headers)).json()["name"] == "Haircut"
    patched = await client.patch(
        path, json={"duration_minutes": 45, "description": None}, headers=acme.headers
    )
    assert (patched.json()["duration_minutes"], patched.json()["description"], patched.json()["name"]) == (
        45,
        None,
        "Haircut",
    )
    listed = (await client.get("/v1/services", headers=acme.headers)).json()
    assert [s["id"] for s in listed["data"]] == [service["id"]]
    assert (await client.delete(path, headers=acme.headers)).status_code == 204
    assert (await client.get(path, headers=acme.headers)).status_code == 404
    assert (await client.delete(path, headers=acme.headers)).status_code == 404


async def test_services_are_invisible_across_accounts(client: Client, acme: Caller, globex: Caller) -> None:
    service = (
        await client.post("/v1/services", json={"name": "Cut", "duration_minutes": 30}, headers=acme.headers)
    ).json()
    path = f"/v1/services/{service['id']}"
    assert (await client.patch(path, json={"name": "Mine"}, headers=globex.headers)).status_code == 404
    assert (await client.delete(path, headers=globex.headers)).status_code == 404
    assert (await client.get(path, headers=acme.headers)).json()["name"] == "Cut"
