"""``POST /v1/keys/verify``: SPEC §4 outcomes in a 200 answer, tenancy, quota per cost, usage rows."""

from __future__ import annotations

import msgspec
import pytest

from reservekit.clock import FakeClock
from reservekit.keys.tokens import generate_secret
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.web.app import create_app
from tests.web.conftest import Caller, Client, create_key, make_account, problem, serving
from tests.web.test_flags_and_leaks import flags_of
from tests.web.test_usage_recording import usage_rows

VERIFY = "/v1/keys/verify"


async def verifier_of(client: Client, owner: Caller) -> Caller:
    return await create_key(client, owner, name="service", scopes=["keys:verify"])


async def verify(client: Client, service: Caller, **body: object) -> dict[str, object]:
    response = await client.post(VERIFY, json=body, headers=service.headers)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


async def test_a_valid_key_is_answered_with_its_facts_and_never_echoed(
    client: Client, acme: Caller, clock: FakeClock
) -> None:
    service = await verifier_of(client, acme)
    web = await create_key(client, acme, name="web", domains=["shop.example"], scopes=["services:read"])
    answer = await verify(
        client, service, key=web.secret, origin="https://shop.example", required_scopes=["services:read"]
    )
    assert answer == {
        "valid": True,
        "code": "valid",
        "title": "API key is valid",
        "status": 200,
        "key_id": web.key_id,
        "account_id": acme.account_id,
        "scopes": ["services:read"],
        "domains": ["shop.example"],
        "expires_at": None,
        "ratelimit": {
            "limit": 60,
            "remaining": answer["ratelimit"]["remaining"],
            "reset": answer["ratelimit"]["reset"],
        },  # type: ignore[index]
        "retry_after": None,
        "position": answer["position"],
    }
    assert int(answer["position"]) > 0  # type: ignore[call-overload]
    response = await client.post(VERIFY, json={"key": web.secret}, headers=service.headers)
    assert web.secret not in response.text
    assert web.secret[7:] not in response.text


async def test_the_default_key_cannot_verify_and_keys_verify_is_not_a_default_scope(
    client: Client, acme: Caller
) -> None:
    response = await client.post(VERIFY, json={"key": acme.secret}, headers=acme.headers)
    assert response.status_code == 403
    assert problem(response)["code"] == "scope_denied"
    plain = await create_key(client, acme, name="plain")
    listed = await client.get(f"/v1/api-keys/{plain.key_id}", headers=acme.headers)
    assert "keys:verify" not in listed.json()["scopes"]


async def test_a_key_without_keys_write_cannot_grant_keys_verify(client: Client, acme: Caller) -> None:
    writer_without_verify = await create_key(client, acme, name="w", scopes=["keys:read"])
    response = await client.post(
        "/v1/api-keys", json={"scopes": ["keys:verify"]}, headers=writer_without_verify.headers
    )
    assert response.status_code == 403


async def test_another_accounts_key_answers_exactly_like_an_unknown_key(
    client: Client, acme: Caller, globex: Caller
) -> None:
    service = await verifier_of(client, acme)
    theirs = await verify(client, service, key=globex.secret)
    unknown = await verify(client, service, key=generate_secret())
    assert theirs == {**unknown, "position": theirs["position"]}
    assert theirs["code"] == "api_key_invalid"
    assert theirs["key_id"] is None


async def test_an_operators_service_key_verifies_any_account(
    client: Client, operator: Caller, globex: Caller
) -> None:
    answer = await verify(client, operator, key=globex.secret)
    assert (answer["valid"], answer["account_id"], answer["key_id"]) == (
        True,
        globex.account_id,
        globex.key_id,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": 42}, "key"),
        ({"key": "x", "extra": 1}, "extra"),
        ({"key": "x", "cost": 0}, "cost"),
        ({"key": "x", "cost": 1001}, "cost"),
        ({"key": "x", "required_scopes": "services:read"}, "required_scopes"),
        ({"key": "x", "client_ip": "not-an-ip"}, "client_ip"),
        ({"key": "x" * 201}, "key"),
    ],
)
async def test_malformed_bodies_get_a_problem_naming_the_field_and_record_no_verification(
    client: Client, acme: Caller, runtime: Runtime, body: dict[str, object], field: str
) -> None:
    service = await verifier_of(client, acme)
    response = await client.post(VERIFY, json=body, headers=service.headers)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem(response)["field"] == field
    assert "x" * 20 not in response.text
    await runtime.usage.flush()
    assert [r for r in await usage_rows(runtime) if r["method"] == "VERIFY"] == []


async def test_a_refused_body_never_echoes_the_key(client: Client, acme: Caller) -> None:
    service = await verifier_of(client, acme)
    response = await client.post(VERIFY, json={"key": acme.secret, "extra": 1}, headers=service.headers)
    assert response.status_code == 422  # parsed, but not the schema
    assert problem(response)["field"] == "extra"
    assert acme.secret not in response.text
    assert acme.secret[7:20] not in response.text
    wrong_method = await client.get(VERIFY, headers=service.headers)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"].startswith("application/problem+json")


async def test_a_body_that_is_not_json_is_refused(client: Client, acme: Caller) -> None:
    service = await verifier_of(client, acme)
    response = await client.post(
        VERIFY, content=b"key=sk_rsv_x", headers={**service.headers, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_cost_spends_the_verified_accounts_quota(settings: Settings, clock: FakeClock) -> None:
    limited = msgspec.structs.replace(settings, plans={"free": 5, "pro": 600, "enterprise": 6000})
    app = create_app(limited, clock=clock)
    async with serving(app) as client:
        runtime: Runtime = app.state.runtime
        ops = await make_account(runtime, "Ops", operator=True, plan="enterprise")
        acme = await make_account(runtime, "Acme")
        first = await verify(client, ops, key=acme.secret, cost=3)
        assert first["ratelimit"] == {"limit": 5, "remaining": 2, "reset": int(clock.timestamp()) + 36}
        second = await verify(client, ops, key=acme.secret, cost=3)
        assert (second["valid"], second["code"], second["status"]) == (False, "rate_limited", 429)
        assert second["title"] == "Rate limit exceeded"
        assert second["retry_after"] == 12
        too_much = await verify(client, ops, key=acme.secret, cost=6)
        assert too_much["code"] == "rate_limited"
        # The refusals spent nothing: two more unit requests still fit.
        assert (await client.get("/v1/services", headers=acme.headers)).status_code == 200


async def test_verifications_are_in_the_usage_log_and_raise_flags(
    client: Client, acme: Caller, runtime: Runtime
) -> None:
    service = await verifier_of(client, acme)
    doomed = await create_key(client, acme, name="doomed")
    await client.post(f"/v1/api-keys/{doomed.key_id}/revoke", headers=acme.headers)
    answer = await verify(client, service, key=doomed.secret, client_ip="192.0.2.7", origin="https://a.test")
    assert (answer["code"], answer["status"], answer["key_id"]) == ("api_key_revoked", 401, doomed.key_id)
    await runtime.usage.flush()
    everything = await usage_rows(runtime)
    request_id = next(r["request_id"] for r in everything if r["method"] == "VERIFY")
    rows = [r for r in everything if r["request_id"] == request_id]
    by_method = {str(r["method"]): r for r in rows}
    assert by_method["POST"]["key_id"] == service.key_id  # the service's own request
    assert by_method["POST"]["outcome"] == "ok"
    verified = by_method["VERIFY"]
    assert (verified["key_id"], verified["account_id"], verified["outcome"], verified["status"]) == (
        doomed.key_id,
        acme.account_id,
        "revoked",
        401,
    )
    assert (verified["client_ip"], verified["origin"]) == ("192.0.2.7", "a.test")
    assert verified["route"] == f"/v1/keys/verify by {service.key_id}"
    await runtime.refresh_projections()
    [flag] = await flags_of(client, acme, rule="revoked_key_used")
    assert flag["key_id"] == doomed.key_id
    assert flag["evidence"]["ips"] == ["192.0.2.7"]  # type: ignore[index]


async def test_an_operator_accounts_key_without_platform_admin_sees_only_its_account(
    client: Client, operator: Caller, globex: Caller
) -> None:
    narrow = await create_key(client, operator, name="svc", scopes=["keys:verify"])
    answer = await verify(client, narrow, key=globex.secret)
    assert (answer["code"], answer["key_id"]) == ("api_key_invalid", None)


async def test_an_idempotency_key_never_replays_an_old_answer(client: Client, acme: Caller) -> None:
    service = await verifier_of(client, acme)
    victim = await create_key(client, acme, name="victim")
    headers = {**service.headers, "Idempotency-Key": "same-key"}
    first = await client.post(VERIFY, json={"key": victim.secret}, headers=headers)
    await client.post(f"/v1/api-keys/{victim.key_id}/revoke", headers=acme.headers)
    again = await client.post(VERIFY, json={"key": victim.secret}, headers=headers)
    assert (first.json()["code"], again.json()["code"]) == ("valid", "api_key_revoked")
    assert "idempotent-replayed" not in again.headers
