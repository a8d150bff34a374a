"""The audit API: scoping, filters, cursors, verification and key states as of an instant."""

from __future__ import annotations

from reservekit.clock import FakeClock
from reservekit.runtime import Runtime
from tests.web.conftest import Caller, Client, create_key


async def test_events_are_scoped_to_the_callers_account(
    client: Client, acme: Caller, globex: Caller, operator: Caller
) -> None:
    mine = (await client.get("/v1/audit/events", headers=acme.headers)).json()["data"]
    assert {e["data"]["account_id"] for e in mine} == {acme.account_id}
    assert [e["type"] for e in mine] == ["account_opened", "key_created"]
    assert all(len(e["hash"]) == 64 and len(e["prev_hash"]) == 64 for e in mine)
    # Asking for another account is ignored unless the caller is an operator.
    forced = await client.get(
        "/v1/audit/events", params={"account_id": globex.account_id}, headers=acme.headers
    )
    assert {e["data"]["account_id"] for e in forced.json()["data"]} == {acme.account_id}
    everything = (await client.get("/v1/audit/events", headers=operator.headers)).json()["data"]
    assert {acme.account_id, globex.account_id, operator.account_id} <= {
        e["data"]["account_id"] for e in everything
    }
    one = await client.get(
        "/v1/audit/events", params={"account_id": globex.account_id}, headers=operator.headers
    )
    assert {e["data"]["account_id"] for e in one.json()["data"]} == {globex.account_id}


async def test_event_filters_and_cursor(client: Client, acme: Caller) -> None:
    other = await create_key(client, acme, name="other")
    await client.post(f"/v1/api-keys/{other.key_id}/revoke", json={"reason": "test"}, headers=acme.headers)
    revoked = (
        await client.get("/v1/audit/events", params={"type": "key_revoked"}, headers=acme.headers)
    ).json()
    assert [e["stream_id"] for e in revoked["data"]] == [other.key_id]
    assert revoked["data"][0]["metadata"]["actor_key_id"] == acme.key_id
    assert revoked["data"][0]["metadata"]["request_id"].startswith("req_")
    by_actor = (
        await client.get("/v1/audit/events", params={"actor": acme.key_id}, headers=acme.headers)
    ).json()
    assert [e["type"] for e in by_actor["data"]] == ["key_created", "key_revoked"]
    by_stream = (
        await client.get("/v1/audit/events", params={"stream_id": other.key_id}, headers=acme.headers)
    ).json()
    assert len(by_stream["data"]) == 2
    first = (await client.get("/v1/audit/events", params={"limit": "2"}, headers=acme.headers)).json()
    rest = (
        await client.get("/v1/audit/events", params={"cursor": first["next_cursor"]}, headers=acme.headers)
    ).json()
    positions = [e["position"] for e in first["data"] + rest["data"]]
    assert positions == sorted(set(positions))
    assert len(positions) == 4


async def test_usage_trail_filters(client: Client, acme: Caller, runtime: Runtime) -> None:
    await client.get("/v1/services", headers=acme.headers)
    await client.get("/v1/services", headers={**acme.headers, "Authorization": "Bearer nope"})
    await runtime.usage.flush()
    rows = (await client.get("/v1/audit/usage", headers=acme.headers)).json()["data"]
    # The malformed request belongs to no account: only operators see it.
    assert [r["outcome"] for r in rows] == ["ok"]
    assert rows[0]["key_id"] == acme.key_id
    none = await client.get("/v1/audit/usage", params={"outcome": "revoked"}, headers=acme.headers)
    assert none.json()["data"] == []


async def test_verify_reports_an_intact_chain(client: Client, acme: Caller, operator: Caller) -> None:
    full = (await client.get("/v1/audit/verify", headers=operator.headers)).json()
    assert full["ok"] is True
    assert full["count"] == full["head_position"] == 4
    assert len(full["head_hash"]) == 64
    # The log's size and head hash span every account: a tenant learns only the verdict (issue 9).
    assert (await client.get("/v1/audit/verify", headers=acme.headers)).json() == {"ok": True}


async def test_key_hashes_in_the_trail_are_for_operators_only(
    client: Client, acme: Caller, operator: Caller
) -> None:
    params = {"stream_id": acme.key_id}
    own = (await client.get("/v1/audit/events", params=params, headers=acme.headers)).json()["data"]
    assert own[0]["type"] == "key_created"
    assert "key_hash" not in own[0]["data"]
    assert own[0]["data"]["key_id"] == acme.key_id
    full = (await client.get("/v1/audit/events", params=params, headers=operator.headers)).json()["data"]
    assert len(full[0]["data"]["key_hash"]) == 64


async def test_audit_needs_audit_read(client: Client, acme: Caller) -> None:
    reader = await create_key(client, acme, name="no audit", scopes=["services:read"])
    assert (await client.get("/v1/audit/events", headers=reader.headers)).status_code == 403


async def test_bad_time_filters_name_the_field(client: Client, acme: Caller) -> None:
    naive = await client.get(
        "/v1/audit/events", params={"since": "2026-01-01T00:00:00"}, headers=acme.headers
    )
    assert naive.status_code == 400
    assert naive.json()["field"] == "since"
    garbage = await client.get("/v1/audit/keys", params={"as_of": "yesterday"}, headers=acme.headers)
    assert garbage.status_code == 400
    assert garbage.json()["field"] == "as_of"
    missing = await client.get("/v1/audit/keys", headers=acme.headers)
    assert missing.status_code == 400


async def test_keys_as_of_on_both_sides_of_create_rotate_grace_end_and_revoke(
    client: Client, acme: Caller, clock: FakeClock
) -> None:
    async def states(moment: str) -> dict[str, str]:
        response = await client.get("/v1/audit/keys", params={"as_of": moment}, headers=acme.headers)
        assert response.status_code == 200, response.text
        return {k["name"]: k["status"] for k in response.json()["data"]}

    t0 = clock.now()
    clock.advance(60)  # 12:01 create
    created = await create_key(client, acme, name="k", domains=["a.example.com"])
    clock.advance(60)  # 12:02 rotate with 10 minutes of grace (until 12:12)
    rotated = await client.post(
        f"/v1/api-keys/{created.key_id}/rotate", json={"grace_period_seconds": 600}, headers=acme.headers
    )
    new_id = rotated.json()["id"]
    clock.advance(1200)  # 12:22 revoke the new key
    await client.post(f"/v1/api-keys/{new_id}/revoke", headers=acme.headers)

    def iso(seconds: int) -> str:
        from datetime import timedelta

        return (t0 + timedelta(seconds=seconds)).isoformat()

    assert await states(iso(30)) == {"first key": "active"}
    assert await states(iso(90)) == {"first key": "active", "k": "active"}
    after_rotation = await client.get("/v1/audit/keys", params={"as_of": iso(150)}, headers=acme.headers)
    keys = {k["id"]: k for k in after_rotation.json()["data"]}
    assert keys[created.key_id]["status"] == "active"
    assert keys[created.key_id]["rotated_to"] == new_id
    assert keys[new_id]["status"] == "active"
    assert keys[new_id]["domains"] == ["a.example.com"]
    assert (await states(iso(120 + 599)))["k"] == "active"  # one second before the grace ends
    after_grace = await client.get("/v1/audit/keys", params={"as_of": iso(120 + 600)}, headers=acme.headers)
    assert {k["id"]: k["status"] for k in after_grace.json()["data"]}[created.key_id] == "expired"
    before_revoke = await client.get("/v1/audit/keys", params={"as_of": iso(1319)}, headers=acme.headers)
    assert {k["id"]: k["status"] for k in before_revoke.json()["data"]}[new_id] == "active"
    after_revoke = await client.get("/v1/audit/keys", params={"as_of": iso(1321)}, headers=acme.headers)
    assert {k["id"]: k["status"] for k in after_revoke.json()["data"]}[new_id] == "revoked"
