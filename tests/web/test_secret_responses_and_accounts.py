"""Responses with a secret are never cached and say where the new resource is; operators list accounts."""

from __future__ import annotations

from tests.web.conftest import Caller, Client


async def test_every_response_with_a_secret_is_no_store_and_has_a_location(
    client: Client, acme: Caller, operator: Caller
) -> None:
    created = await client.post("/v1/api-keys", json={"name": "ci"}, headers=acme.headers)
    rotated = await client.post(
        f"/v1/api-keys/{acme.key_id}/rotate", json={"grace_period_seconds": 60}, headers=acme.headers
    )
    opened = await client.post("/v1/accounts", json={"name": "Initech"}, headers=operator.headers)
    for response, location in (
        (created, f"/v1/api-keys/{created.json()['id']}"),
        (rotated, f"/v1/api-keys/{rotated.json()['id']}"),
        (opened, f"/v1/accounts/{opened.json()['account']['id']}"),
    ):
        assert response.status_code == 201, response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["location"] == location
    follow = await client.get(created.headers["location"], headers=acme.headers)
    assert follow.status_code == 200
    assert "secret" not in follow.json()
    assert "no-store" not in follow.headers.get("cache-control", "")


async def test_operators_page_through_every_account_and_tenants_cannot(
    client: Client, acme: Caller, globex: Caller, operator: Caller
) -> None:
    first = (await client.get("/v1/accounts", params={"limit": 2}, headers=operator.headers)).json()
    assert len(first["data"]) == 2
    rest = await client.get(
        "/v1/accounts", params={"limit": 2, "cursor": first["next_cursor"]}, headers=operator.headers
    )
    ids = [a["id"] for a in first["data"] + rest.json()["data"]]
    assert ids == sorted({acme.account_id, globex.account_id, operator.account_id})
    assert rest.json()["next_cursor"] is None
    assert {a["plan"] for a in first["data"]} == {"free"}
    refused = await client.get("/v1/accounts", headers=acme.headers)
    assert refused.status_code == 403
