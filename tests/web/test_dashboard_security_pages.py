"""The security view over HTTP on both backends: flags with evidence and Resolve, the audit trail with
positions and hashes, log verification (intact and tampered), keys as of an instant, the JSON-lines
export, and who may open any of it."""

from __future__ import annotations

import re
from datetime import timedelta

import msgspec
import pytest
from sqlalchemy import text, update

from reservekit.clock import FakeClock
from reservekit.events.tables import events
from reservekit.runtime import Runtime
from tests.web.conftest import Caller, Client, create_key, event_count
from tests.web.dashboard_helpers import csrf_of
from tests.web.insight_helpers import add_member, seed_usage, sign_in, usage_row

FLAG_ID = re.compile(r'action="/dashboard/security/flags/(flg_[^/"]+)/resolve"')


@pytest.fixture
async def auditor(client: Client, acme: Caller, runtime: Runtime) -> str:
    member_id = await add_member(runtime, acme.account_id, "audit@acme.example", "auditor")
    await sign_in(client, "audit@acme.example")
    return member_id


async def revoked_and_used(client: Client, caller: Caller, runtime: Runtime) -> Caller:
    doomed = await create_key(client, caller, name="doomed")
    revoked = await client.post(f"/v1/api-keys/{doomed.key_id}/revoke", headers=caller.headers)
    assert revoked.status_code == 200
    now = runtime.clock.now()
    used = [
        usage_row(doomed.key_id, caller.account_id, now - timedelta(seconds=s), "revoked", ip="192.0.2.44")
        for s in (20, 5)
    ]
    await seed_usage(runtime, used)
    return doomed


async def test_an_auditor_sees_a_flag_with_its_evidence_and_resolves_it_with_a_note(
    client: Client, acme: Caller, runtime: Runtime, auditor: str
) -> None:
    doomed = await revoked_and_used(client, acme, runtime)
    page = await client.get("/dashboard/security/")
    assert page.status_code == 200
    assert "Revoked key used" in page.text
    assert "sev-high" in page.text
    assert doomed.key_id in page.text
    assert "&#34;ips&#34;: [\n    &#34;192.0.2.44&#34;" in page.text  # the evidence, as JSON
    [flag_id] = FLAG_ID.findall(page.text)

    resolved = await client.post(
        f"/dashboard/security/flags/{flag_id}/resolve",
        data={"_csrf_token": csrf_of(page.text), "resolution": "confirmed", "note": "caller rotated"},
    )
    assert resolved.status_code == 303
    assert resolved.headers["location"] == f"/dashboard/security/?resolved={flag_id}"
    after = await client.get(resolved.headers["location"])
    assert f"Flag <code>{flag_id}</code> resolved" in after.text
    assert "No open flags." in after.text

    api = await client.get(f"/v1/audit/flags/{flag_id}", headers=acme.headers)
    assert api.json()["status"] == "resolved"
    assert api.json()["resolution"]["note"] == "caller rotated"
    assert api.json()["resolution"]["resolved_by"] == auditor  # the member, not "dashboard"
    trail = await client.get("/dashboard/security/trail", params={"type": "flag_resolved"})
    assert auditor in trail.text  # the member who clicked is the actor


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"resolution": "shrug", "note": ""}, 400),
        ({"resolution": "confirmed", "note": "x" * 2001}, 400),
        ({"resolution": "", "note": "forgot"}, 400),
    ],
)
async def test_a_bad_resolution_is_refused_and_writes_nothing(
    client: Client, acme: Caller, runtime: Runtime, auditor: str, fields: dict[str, str], status: int
) -> None:
    await revoked_and_used(client, acme, runtime)
    page = await client.get("/dashboard/security/")
    [flag_id] = FLAG_ID.findall(page.text)
    before = await event_count(runtime)
    response = await client.post(
        f"/dashboard/security/flags/{flag_id}/resolve", data={"_csrf_token": csrf_of(page.text), **fields}
    )
    assert response.status_code == status, response.text
    assert "text/html" in response.headers["content-type"]
    assert await event_count(runtime) == before


async def test_resolving_needs_the_csrf_token_and_another_accounts_flag_is_a_404(
    client: Client, acme: Caller, globex: Caller, runtime: Runtime, auditor: str
) -> None:
    await revoked_and_used(client, globex, runtime)
    page = await client.get("/dashboard/security/")
    assert "No open flags." in page.text  # Globex's flag is not Acme's
    flags = await client.get("/v1/audit/flags", headers=globex.headers)
    flag_id = flags.json()["data"][0]["id"]
    before = await event_count(runtime)
    action = f"/dashboard/security/flags/{flag_id}/resolve"
    forged = await client.post(action, data={"resolution": "confirmed"})
    assert forged.status_code == 403
    foreign = await client.post(
        f"/dashboard/security/flags/{flag_id}/resolve",
        data={"_csrf_token": csrf_of(page.text), "resolution": "confirmed"},
    )
    assert foreign.status_code == 404
    assert await event_count(runtime) == before


async def test_the_trail_shows_positions_and_hashes_like_the_api_and_filters(
    client: Client, acme: Caller, runtime: Runtime, auditor: str, clock: FakeClock
) -> None:
    key = await create_key(client, acme, name="trail")
    clock.advance(30 * 60)  # within the session's idle timeout
    await client.post(f"/v1/api-keys/{key.key_id}/revoke", headers=acme.headers)
    params = {"stream_id": key.key_id}
    api = (await client.get("/v1/audit/events", params=params, headers=acme.headers)).json()
    page = (await client.get("/dashboard/security/trail", params={"key": key.key_id})).text
    for event in api["data"]:
        assert f'<td data-label="Position">{event["position"]}</td>' in page
        assert event["hash"] in page
    assert page.index("<code>key_revoked</code>") < page.index("<code>key_created</code>")  # newest first

    revoked = (await client.get("/dashboard/security/trail", params={"type": "key_revoked"})).text
    assert revoked.count('data-label="Position"') == 1
    early = (await client.get("/dashboard/security/trail", params={"until": "2026-06-01T12:15"})).text
    assert "<code>key_created</code>" in early
    assert "<code>key_revoked</code>" not in early
    by_actor = (await client.get("/dashboard/security/trail", params={"actor": auditor})).text
    assert "<code>member_signed_in</code>" in by_actor
    assert "<code>key_created</code>" not in by_actor


async def test_the_trail_pages_newest_first(client: Client, acme: Caller, auditor: str) -> None:
    for i in range(52):
        await create_key(client, acme, name=f"k{i}")
    first = (await client.get("/dashboard/security/trail", params={"type": "key_created"})).text
    assert first.count('data-label="Position"') == 50
    older = re.search(r'href="(/dashboard/security/trail\?[^"]*before=\d+)"', first)
    assert older
    second = (await client.get(older.group(1).replace("&amp;", "&"))).text
    assert second.count('data-label="Position"') == 3  # 52 keys and the account's first key


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"since": "2026-06-01T12:00", "until": "2026-06-01T11:00"},
        {"before": "0"},
        {"type": "t" * 65},
        {"unknown": "1"},
    ],
)
async def test_bad_trail_filters_are_a_400_page(client: Client, auditor: str, params: dict[str, str]) -> None:
    response = await client.get("/dashboard/security/trail", params=params)
    assert response.status_code == 400, response.text
    assert "text/html" in response.headers["content-type"]


async def test_verify_says_intact_then_names_the_first_bad_position_after_tampering(
    client: Client, acme: Caller, runtime: Runtime, auditor: str
) -> None:
    page = await client.get("/dashboard/security/")
    ok = await client.post("/dashboard/security/verify", data={"_csrf_token": csrf_of(page.text)})
    assert ok.status_code == 200
    assert "The log is intact." in ok.text
    async with runtime.engine.begin() as conn:
        if runtime.engine.dialect.name == "sqlite":
            await conn.execute(text("DROP TRIGGER events_no_update"))
        else:
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
        await conn.execute(update(events).where(events.c.position == 2).values(data='{"tampered":true}'))
    bad = await client.post("/dashboard/security/verify", data={"_csrf_token": csrf_of(page.text)})
    assert bad.status_code == 409
    assert 'data-testid="first-bad">2<' in bad.text
    assert "hash does not match" in bad.text


async def test_keys_as_of_an_instant_show_their_status_then(
    client: Client, acme: Caller, runtime: Runtime, auditor: str, clock: FakeClock
) -> None:
    key = await create_key(client, acme, name="forensic")
    clock.advance(30 * 60)
    await client.post(f"/v1/api-keys/{key.key_id}/revoke", headers=acme.headers)
    then = (await client.get("/dashboard/security/keys-as-of", params={"at": "2026-06-01T12:15"})).text
    row = then[then.index("forensic") :]
    assert 'class="badge badge-active">active<' in row[: row.index("</tr>")]
    now = (await client.get("/dashboard/security/keys-as-of")).text
    row = now[now.index("forensic") :]
    assert 'class="badge badge-revoked">revoked<' in row[: row.index("</tr>")]
    before_it = (await client.get("/dashboard/security/keys-as-of", params={"at": "2026-06-01T11:00"})).text
    assert "forensic" not in before_it
    bad = await client.get("/dashboard/security/keys-as-of", params={"at": "soon"})
    assert bad.status_code == 400


async def test_export_downloads_the_ranges_events_as_json_lines(
    client: Client, acme: Caller, globex: Caller, runtime: Runtime, auditor: str, clock: FakeClock
) -> None:
    clock.advance(20 * 60)
    key = await create_key(client, acme, name="exported")
    await create_key(client, globex, name="not ours")
    clock.advance(20 * 60)
    await create_key(client, acme, name="too late")
    page = await client.get("/dashboard/security/")
    response = await client.post(
        "/dashboard/security/export",
        data={"_csrf_token": csrf_of(page.text), "since": "2026-06-01T12:10", "until": "2026-06-01T12:30"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.headers["content-disposition"] == (
        'attachment; filename="reservekit-audit-from-20260601T1210-until-20260601T1230.jsonl"'
    )
    lines = [msgspec.json.decode(line) for line in response.content.splitlines()]
    assert [line["stream_id"] for line in lines if line["type"] == "key_created"] == [key.key_id]
    assert {line["data"]["account_id"] for line in lines} == {acme.account_id}
    assert all(len(line["hash"]) == 64 and "key_hash" not in line["data"] for line in lines)
    refused = await client.post(
        "/dashboard/security/export",
        data={"_csrf_token": csrf_of(page.text), "since": "2026-06-01T14:00", "until": "2026-06-01T13:00"},
    )
    assert refused.status_code == 400


async def test_a_developer_cannot_open_any_of_the_security_view(
    client: Client, acme: Caller, runtime: Runtime
) -> None:
    await revoked_and_used(client, acme, runtime)
    await add_member(runtime, acme.account_id, "dev@acme.example", "developer")
    await sign_in(client, "dev@acme.example")
    token = csrf_of((await client.get("/dashboard/keys/")).text)
    flag_id = (await client.get("/v1/audit/flags", headers=acme.headers)).json()["data"][0]["id"]
    before = await event_count(runtime)
    for method, path in (
        ("GET", "/dashboard/security/"),
        ("GET", "/dashboard/security/trail"),
        ("GET", "/dashboard/security/keys-as-of"),
        ("POST", "/dashboard/security/verify"),
        ("POST", "/dashboard/security/export"),
        ("POST", f"/dashboard/security/flags/{flag_id}/resolve"),
    ):
        data = {"_csrf_token": token, "resolution": "confirmed"} if method == "POST" else None
        response = await client.request(method, path, data=data)
        assert response.status_code == 403, path
        assert "Your role (developer) does not allow this" in response.text
    assert await event_count(runtime) == before


async def test_an_operator_sees_every_accounts_flags(
    client: Client, acme: Caller, operator: Caller, runtime: Runtime
) -> None:
    await revoked_and_used(client, acme, runtime)
    await add_member(runtime, operator.account_id, "ops@ops.example", "owner")
    await sign_in(client, "ops@ops.example")
    page = await client.get("/dashboard/security/")
    assert "You are an operator" in page.text
    assert acme.account_id in page.text
    assert len(FLAG_ID.findall(page.text)) == 1
