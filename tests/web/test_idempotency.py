"""Idempotency-Key on POST (issue 9): a retry never writes twice and never shows a secret twice."""

from __future__ import annotations

from sqlalchemy import insert

from reservekit.clock import FakeClock, to_micros
from reservekit.idempotency import idempotency_keys
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.web.app import create_app
from tests.web.conftest import Caller, Client, event_count, make_account, problem, serving


async def test_a_retried_create_answers_the_first_answer_without_the_secret(
    client: Client, runtime: Runtime, acme: Caller
) -> None:
    headers = {**acme.headers, "Idempotency-Key": "create-ci-key-1"}
    first = await client.post("/v1/api-keys", json={"name": "ci"}, headers=headers)
    assert first.status_code == 201
    assert first.json()["secret"].startswith("sk_rsv_")
    written = await event_count(runtime)

    again = await client.post("/v1/api-keys", json={"name": "ci"}, headers=headers)

    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert again.json() == {k: v for k, v in first.json().items() if k != "secret"}
    assert first.json()["secret"] not in again.text
    assert await event_count(runtime) == written
    assert "idempotent-replayed" not in first.headers


async def test_the_same_key_with_another_request_is_refused_and_writes_nothing(
    client: Client, runtime: Runtime, acme: Caller
) -> None:
    headers = {**acme.headers, "Idempotency-Key": "k-2"}
    assert (await client.post("/v1/api-keys", json={"name": "a"}, headers=headers)).status_code == 201
    written = await event_count(runtime)
    other = await client.post("/v1/api-keys", json={"name": "b"}, headers=headers)
    assert other.status_code == 422
    assert problem(other)["code"] == "idempotency_key_reused"
    assert problem(other)["field"] == "Idempotency-Key"
    assert await event_count(runtime) == written


async def test_a_duplicate_while_the_first_still_runs_gets_409(
    client: Client, runtime: Runtime, acme: Caller, clock: FakeClock
) -> None:
    from reservekit.web.idempotency import _fingerprint

    scope = {"method": "POST", "path": "/v1/api-keys", "query_string": b""}
    async with runtime.engine.begin() as conn:  # the first request has claimed the key and not finished
        await conn.execute(
            insert(idempotency_keys).values(
                scope=f"acct:{acme.account_id}",
                key="k-3",
                fingerprint=_fingerprint(scope, b'{"name":"x"}'),  # type: ignore[arg-type]
                created_at_us=to_micros(clock.now()),
            )
        )
    written = await event_count(runtime)
    busy = await client.post(
        "/v1/api-keys",
        content=b'{"name":"x"}',
        headers={**acme.headers, "Idempotency-Key": "k-3", "Content-Type": "application/json"},
    )
    assert busy.status_code == 409
    assert problem(busy)["code"] == "idempotency_key_in_progress"
    assert await event_count(runtime) == written


async def test_keys_belong_to_their_account_and_expire_after_a_day(
    client: Client, runtime: Runtime, acme: Caller, globex: Caller, clock: FakeClock
) -> None:
    body = {"name": "same"}
    a = await client.post("/v1/api-keys", json=body, headers={**acme.headers, "Idempotency-Key": "shared"})
    b = await client.post("/v1/api-keys", json=body, headers={**globex.headers, "Idempotency-Key": "shared"})
    assert a.json()["id"] != b.json()["id"]
    assert "secret" in b.json()
    clock.advance(24 * 3600 + 1)
    later = await client.post(
        "/v1/api-keys", json=body, headers={**acme.headers, "Idempotency-Key": "shared"}
    )
    assert later.status_code == 201
    assert "secret" in later.json()
    assert later.json()["id"] != a.json()["id"]


async def test_a_rotation_retried_on_another_replica_is_not_rotated_twice(settings: Settings) -> None:
    app_a, app_b = create_app(settings), create_app(settings)
    async with serving(app_a) as a, serving(app_b) as b:
        acme = await make_account(app_a.state.runtime)
        headers = {**acme.headers, "Idempotency-Key": "rotate-once"}
        body = {"grace_period_seconds": 60}
        first = await a.post(f"/v1/api-keys/{acme.key_id}/rotate", json=body, headers=headers)
        retried = await b.post(f"/v1/api-keys/{acme.key_id}/rotate", json=body, headers=headers)
        assert first.status_code == retried.status_code == 201
        assert retried.json()["id"] == first.json()["id"]
        assert "secret" not in retried.json()
        assert retried.headers["idempotent-replayed"] == "true"


async def test_a_malformed_idempotency_key_is_400(client: Client, acme: Caller) -> None:
    response = await client.post(
        "/v1/api-keys", json={}, headers={**acme.headers, "Idempotency-Key": "x" * 256}
    )
    assert response.status_code == 400
    assert problem(response)["field"] == "Idempotency-Key"
