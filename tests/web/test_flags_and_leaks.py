"""Flags and leak reports over HTTP: flags with evidence, scoping, resolving (and reopening), and
POST /v1/leaks answering identically whatever the key while revoking and flagging a real one."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from reservekit.clock import FakeClock, to_micros
from reservekit.events.tables import events
from reservekit.keys.tokens import generate_secret
from reservekit.runtime import Runtime
from reservekit.usage.log import append_usage
from reservekit.usage.records import UsageRecord
from tests.web.conftest import Caller, Client, create_key, event_count, problem

SECOND = 1_000_000


async def seed(runtime: Runtime, *rows: UsageRecord) -> None:
    await append_usage(runtime.engine, rows, recorded_at_us=to_micros(runtime.clock.now()))
    await runtime.refresh_projections()


def used(
    runtime: Runtime, caller: Caller, outcome: str, *, ago_s: int = 0, ip: str = "192.0.2.44"
) -> UsageRecord:
    return UsageRecord(
        occurred_at_us=to_micros(runtime.clock.now()) - ago_s * SECOND,
        request_id="req_seed",
        key_id=caller.key_id,
        account_id=caller.account_id,
        client_ip=ip,
        origin="https://shop.example",
        method="GET",
        route="/v1/services",
        status=401,
        outcome=outcome,
        detail=None,
        latency_us=100,
    )


async def flags_of(client: Client, caller: Caller, **params: str) -> list[dict[str, object]]:
    response = await client.get("/v1/audit/flags", params=params, headers=caller.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, object]] = response.json()["data"]
    return data


async def test_a_revoked_key_used_shows_as_a_flag_with_evidence(
    client: Client, acme: Caller, runtime: Runtime
) -> None:
    doomed = await create_key(client, acme, name="doomed")
    await seed(
        runtime, used(runtime, doomed, "revoked", ago_s=30), used(runtime, doomed, "revoked", ago_s=10)
    )
    [flag] = await flags_of(client, acme)
    assert flag["rule"] == "revoked_key_used"
    assert flag["severity"] == "high"
    assert flag["status"] == "open"
    assert (flag["key_id"], flag["account_id"], flag["hits"]) == (doomed.key_id, acme.account_id, 2)
    assert flag["evidence"] == {
        "ips": ["192.0.2.44"],
        "origins": ["https://shop.example"],
        "routes": ["GET /v1/services"],
    }
    assert flag["first_seen"] == "2026-06-01T11:59:30Z"
    assert flag["last_seen"] == "2026-06-01T11:59:50Z"
    assert flag["resolution"] is None


async def test_using_a_revoked_key_over_http_raises_a_flag(
    client: Client, acme: Caller, runtime: Runtime
) -> None:
    doomed = await create_key(client, acme, name="doomed")
    await client.post(f"/v1/api-keys/{doomed.key_id}/revoke", headers=acme.headers)
    refused = await client.get("/v1/services", headers=doomed.headers)
    assert refused.status_code == 401
    await runtime.usage.flush()
    await runtime.refresh_projections()
    [flag] = await flags_of(client, acme, rule="revoked_key_used")
    assert flag["key_id"] == doomed.key_id
    assert flag["evidence"]["ips"] == ["203.0.113.10"]  # type: ignore[index]


async def test_filters_scoping_and_pages(
    client: Client, acme: Caller, globex: Caller, operator: Caller, runtime: Runtime
) -> None:
    mine = await create_key(client, acme, name="mine")
    theirs = await create_key(client, globex, name="theirs")
    await seed(
        runtime,
        used(runtime, mine, "revoked", ago_s=50),
        used(runtime, mine, "expired", ago_s=40),
        used(runtime, theirs, "revoked", ago_s=30),
    )
    assert {f["rule"] for f in await flags_of(client, acme)} == {"revoked_key_used", "expired_key_used"}
    assert [f["rule"] for f in await flags_of(client, acme, severity="medium")] == ["expired_key_used"]
    assert [f["rule"] for f in await flags_of(client, acme, rule="revoked_key_used")] == ["revoked_key_used"]
    assert await flags_of(client, acme, key_id=theirs.key_id) == []
    assert await flags_of(client, acme, status="resolved") == []
    assert await flags_of(client, acme, since="2026-06-01T12:00:01Z") == []
    assert len(await flags_of(client, acme, until="2026-06-01T11:59:15Z")) == 1
    everything = await flags_of(client, operator)
    assert {f["account_id"] for f in everything} == {acme.account_id, globex.account_id}
    assert {f["account_id"] for f in await flags_of(client, operator, account_id=globex.account_id)} == {
        globex.account_id
    }
    first = (await client.get("/v1/audit/flags", params={"limit": "2"}, headers=operator.headers)).json()
    assert len(first["data"]) == 2
    rest = await flags_of(client, operator, limit="2", cursor=first["next_cursor"])
    ids = [f["id"] for f in first["data"]] + [f["id"] for f in rest]
    assert sorted(ids) == sorted(f["id"] for f in everything)
    bad = await client.get("/v1/audit/flags", params={"since": "yesterday"}, headers=acme.headers)
    assert (bad.status_code, problem(bad)["field"]) == (400, "since")
    unknown = await client.get("/v1/audit/flags", params={"rule": "nope"}, headers=acme.headers)
    assert (unknown.status_code, problem(unknown)["field"]) == (400, "rule")
    reader = await create_key(client, acme, name="reader", scopes=["services:read"])
    assert (await client.get("/v1/audit/flags", headers=reader.headers)).status_code == 403


async def test_resolving_writes_an_event_and_a_recurrence_reopens(
    client: Client, acme: Caller, globex: Caller, runtime: Runtime, clock: FakeClock
) -> None:
    doomed = await create_key(client, acme, name="doomed")
    await seed(runtime, used(runtime, doomed, "revoked", ago_s=5))
    [flag] = await flags_of(client, acme)
    flag_id = str(flag["id"])
    elsewhere = await client.post(
        f"/v1/audit/flags/{flag_id}/resolve", json={"resolution": "confirmed"}, headers=globex.headers
    )
    assert elsewhere.status_code == 404
    before = await event_count(runtime)
    resolved = await client.post(
        f"/v1/audit/flags/{flag_id}/resolve",
        json={"resolution": "mitigated", "note": "rotated the CI secret"},
        headers=acme.headers,
    )
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["status"] == "resolved"
    assert body["resolution"]["resolution"] == "mitigated"
    assert body["resolution"]["note"] == "rotated the CI secret"
    assert body["resolution"]["resolved_by"] == acme.key_id
    assert await event_count(runtime) == before + 1
    [recorded] = await runtime.store.read_stream(flag_id)
    assert recorded.type == "flag_resolved"
    assert recorded.metadata.actor_key_id == acme.key_id
    assert (await flags_of(client, acme, status="resolved"))[0]["id"] == flag_id
    bad = await client.post(
        f"/v1/audit/flags/{flag_id}/resolve", json={"resolution": "meh"}, headers=acme.headers
    )
    assert bad.status_code == 422
    clock.advance(60)
    await seed(runtime, used(runtime, doomed, "revoked"))
    [again] = await flags_of(client, acme)
    assert (again["id"], again["status"], again["hits"]) == (flag_id, "open", 2)


async def test_leak_reports_answer_alike_and_revoke_a_real_key(
    client: Client, acme: Caller, runtime: Runtime
) -> None:
    leaked = await create_key(client, acme, name="leaked")
    answers = []
    for key in (leaked.secret, generate_secret(), "sk_rsv_not-a-key"):
        response = await client.post("/v1/leaks", json={"key": key, "source": "https://paste.example/1"})
        answers.append((response.status_code, response.content))
    assert answers[0][0] == 202
    assert answers[0] == answers[1] == answers[2]
    refused = await client.get("/v1/services", headers=leaked.headers)
    assert (refused.status_code, problem(refused)["title"]) == (401, "API key revoked")
    [flag] = await flags_of(client, acme, rule="leaked_key_reported")
    assert (flag["severity"], flag["key_id"], flag["status"]) == ("critical", leaked.key_id, "open")
    assert flag["evidence"]["source"] == "https://paste.example/1"  # type: ignore[index]
    async with runtime.engine.connect() as conn:
        types = [
            t for (t,) in await conn.execute(select(events.c.type).where(events.c.stream_id == leaked.key_id))
        ]
    assert types == ["key_created", "leak_reported"]
    before = await event_count(runtime)
    again = await client.post("/v1/leaks", json={"key": leaked.secret})
    assert (again.status_code, again.content) == answers[0]
    assert await event_count(runtime) == before  # recorded once per key
    status = (await client.get(f"/v1/api-keys/{leaked.key_id}", headers=acme.headers)).json()["status"]
    assert status == "revoked"


async def test_leak_reports_are_limited_per_client_ip(client: Client, runtime: Runtime) -> None:
    for _ in range(10):
        assert (await client.post("/v1/leaks", json={"key": generate_secret()})).status_code == 202
    limited = await client.post("/v1/leaks", json={"key": generate_secret()})
    assert limited.status_code == 429
    assert problem(limited)["title"] == "Rate limit exceeded"
    assert int(limited.headers["retry-after"]) >= 1
    app = client._transport.app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, client=("198.51.100.99", 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        assert (await other.post("/v1/leaks", json={"key": generate_secret()})).status_code == 202
