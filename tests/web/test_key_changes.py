"""``GET /v1/keys/changes``: key and plan changes by position, scoped like verify, resumable, SSE or JSON."""

from __future__ import annotations

import asyncio
import time

import pytest

from reservekit.runtime import Runtime
from tests.web.conftest import Caller, Client, create_key, problem

CHANGES = "/v1/keys/changes"
JSON = {"Accept": "application/json"}


async def poll(client: Client, service: Caller, **params: object) -> dict[str, object]:
    response = await client.get(CHANGES, params=params, headers={**service.headers, **JSON})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def kinds(page: dict[str, object]) -> list[tuple[str, object]]:
    return [(str(c["type"]), c["key_id"]) for c in page["changes"]]  # type: ignore[attr-defined]


async def test_an_account_sees_its_own_key_changes_by_position_and_never_a_hash(
    client: Client, acme: Caller, globex: Caller, runtime: Runtime
) -> None:
    service = await create_key(client, acme, name="svc", scopes=["keys:verify"])
    doomed = await create_key(client, acme, name="doomed")
    theirs = await create_key(client, globex, name="theirs")
    await client.post(f"/v1/api-keys/{doomed.key_id}/revoke", headers=acme.headers)
    await client.post(f"/v1/api-keys/{theirs.key_id}/revoke", headers=globex.headers)
    page = await poll(client, service, after=0, wait=0)
    assert kinds(page) == [
        ("account_opened", None),
        ("key_created", acme.key_id),
        ("key_created", service.key_id),
        ("key_created", doomed.key_id),
        ("key_revoked", doomed.key_id),
    ]
    positions = [c["position"] for c in page["changes"]]  # type: ignore[attr-defined]
    assert positions == sorted(positions)
    # The resume point moves past globex's changes too, so they are never rescanned.
    assert page["next"] == runtime.key_view.position
    text = str(page)
    for secret in (acme.secret, doomed.secret, service.secret):
        assert secret not in text
    assert "hash" not in text


async def test_an_operator_sees_every_account(
    client: Client, acme: Caller, globex: Caller, operator: Caller
) -> None:
    page = await poll(client, operator, after=0, wait=0)
    accounts = {c["account_id"] for c in page["changes"]}  # type: ignore[attr-defined]
    assert accounts == {acme.account_id, globex.account_id, operator.account_id}


async def test_without_after_the_feed_starts_at_the_head(
    client: Client, operator: Caller, acme: Caller
) -> None:
    page = await poll(client, operator, wait=0)
    assert page["changes"] == []
    fresh = await create_key(client, acme, name="fresh")
    assert kinds(await poll(client, operator, after=page["next"], wait=0)) == [("key_created", fresh.key_id)]


async def test_a_long_poll_returns_as_soon_as_a_change_commits(
    client: Client, operator: Caller, acme: Caller
) -> None:
    head = (await poll(client, operator, wait=0))["next"]
    waiting = asyncio.create_task(poll(client, operator, after=head, wait=10))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    started = time.monotonic()
    await client.post(f"/v1/api-keys/{acme.key_id}/revoke", headers=acme.headers)
    page = await asyncio.wait_for(waiting, 5)
    assert time.monotonic() - started < 2
    assert kinds(page) == [("key_revoked", acme.key_id)]


async def test_a_long_poll_with_nothing_new_ends_after_wait(client: Client, operator: Caller) -> None:
    head = (await poll(client, operator, wait=0))["next"]
    started = time.monotonic()
    page = await poll(client, operator, after=head, wait=0.3)
    assert 0.25 <= time.monotonic() - started < 3
    assert page == {"changes": [], "next": head}


async def test_bad_parameters_are_refused_naming_them(client: Client, operator: Caller) -> None:
    for params, field in (({"wait": 31}, "wait"), ({"after": -1}, "after"), ({"after": "x"}, "after")):
        response = await client.get(CHANGES, params=params, headers={**operator.headers, **JSON})
        assert response.status_code == 400, response.text
        assert field in str(problem(response).get("detail"))
    response = await client.get(CHANGES, headers={**operator.headers, **JSON, "Last-Event-ID": "abc"})
    assert response.status_code == 400  # a header, not the body
    assert problem(response)["field"] == "Last-Event-ID"


async def test_the_feed_needs_keys_verify(client: Client, acme: Caller) -> None:
    response = await client.get(CHANGES, headers={**acme.headers, **JSON})
    assert response.status_code == 403


async def test_sse_streams_changes_with_ids_and_ends_when_its_key_is_revoked(
    client: Client, acme: Caller
) -> None:
    service = await create_key(client, acme, name="svc", scopes=["keys:verify"])
    doomed = await create_key(client, acme, name="doomed")
    streaming = asyncio.create_task(
        client.get(CHANGES, headers={**service.headers, "Last-Event-ID": "0"}, timeout=20)
    )
    await asyncio.sleep(0.2)
    await client.post(f"/v1/api-keys/{doomed.key_id}/revoke", headers=acme.headers)
    await asyncio.sleep(0.2)
    assert not streaming.done()
    await client.post(f"/v1/api-keys/{service.key_id}/revoke", headers=acme.headers)
    response = await asyncio.wait_for(streaming, 10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in response.text.split("\r\n\r\n") if b.strip()]
    events = [dict(line.split(": ", 1) for line in b.splitlines()) for b in blocks]
    # The backlog first (everything after 0), then a position event: caught up.
    caught_up = next(n for n, e in enumerate(events) if e["event"] == "position")
    assert [e["event"] for e in events[:caught_up]][:2] == ["account_opened", "key_created"]
    assert events[caught_up] == {
        "event": "position",
        "id": events[caught_up - 1]["id"],
        "data": f'{{"position":{events[caught_up - 1]["id"]}}}',
    }
    revoked = [e for e in events if e.get("event") == "key_revoked"]
    # The stream ends once its own key is revoked (having shown that revocation, or not yet).
    assert doomed.key_id in revoked[0]["data"]
    assert all(service.key_id in e["data"] for e in revoked[1:])
    assert int(revoked[0]["id"]) > 0
    assert doomed.secret not in response.text


async def test_sse_says_error_and_ends_when_the_log_cannot_be_read(
    client: Client, operator: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reservekit.db import DatabaseUnavailable
    from reservekit.web import key_changes

    async def unreadable(*_: object, **__: object) -> object:
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(key_changes, "read_changes", unreadable)
    response = await asyncio.wait_for(client.get(CHANGES, headers=operator.headers), 5)
    assert response.status_code == 200
    assert "event: error" in response.text
    assert "database_unavailable" in response.text
