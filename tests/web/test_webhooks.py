"""Webhook endpoints over HTTP and deliveries to a real receiver on loopback (both backends).

The app's own dispatcher runs in the background with a short backoff; the receiver is started by each
test and every delivery is checked with the Standard Webhooks reference verifier.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from litestar import Litestar
from sqlalchemy import select, text
from standardwebhooks import Webhook, WebhookVerificationError

from reservekit.events.tables import events
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.webhooks.tables import webhook_secrets
from tests.conftest import TEST_PEPPER
from tests.web.conftest import Caller, Client, create_key, event_count, problem
from tests.web.test_flags_and_leaks import seed, used
from tests.webhooks.receiver import Receiver

ALL_TYPES = ["key.created", "key.revoked", "key.rotated", "leak.reported", "flag.raised", "flag.resolved"]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        key_pepper=TEST_PEPPER,
        poll_interval_seconds=0.05,
        webhooks_allow_loopback=True,
        webhooks_timeout_seconds=0.5,
        webhooks_backoff_base_seconds=0.05,
        webhooks_backoff_max_seconds=0.2,
    )


@pytest.fixture
async def receiver() -> Receiver:
    started = await Receiver().start()
    yield started  # type: ignore[misc]
    await started.close()


async def subscribe(
    client: Client, caller: Caller, url: str, types: list[str] | None = None
) -> dict[str, object]:
    response = await client.post(
        "/v1/webhook-endpoints", json={"url": url, "event_types": types or ALL_TYPES}, headers=caller.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def verified(secret: str, request: object) -> dict[str, object]:
    body: dict[str, object] = Webhook(secret).verify(request.body, request.headers)  # type: ignore[attr-defined]
    return body


async def test_an_endpoint_shows_its_secret_once_and_the_log_never_holds_it(
    client: Client, acme: Caller, runtime: Runtime
) -> None:
    response = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "event_types": ALL_TYPES},
        headers=acme.headers,
    )
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    assert response.headers["location"] == f"/v1/webhook-endpoints/{created['id']}"
    secret = str(created["secret"])
    assert secret.startswith("whsec_")
    assert created["status"] == "enabled"
    assert created["event_types"] == sorted(ALL_TYPES)
    read = (await client.get(f"/v1/webhook-endpoints/{created['id']}", headers=acme.headers)).json()
    assert "secret" not in read
    listed = (await client.get("/v1/webhook-endpoints", headers=acme.headers)).json()["data"]
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    async with runtime.engine.connect() as conn:
        logged = " ".join(row.data for row in await conn.execute(select(events.c.data)))
        stored = " ".join(row.ciphertext for row in await conn.execute(select(webhook_secrets.c.ciphertext)))
    assert secret[6:] not in logged
    assert secret[6:] not in stored
    assert "webhook_endpoint_created" in await _types(runtime)


async def _types(runtime: Runtime) -> list[str]:
    async with runtime.engine.connect() as conn:
        return [row.type for row in await conn.execute(select(events.c.type).order_by(events.c.position))]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://10.0.0.7/hooks", "event_types": ["key.created"]}, "url"),
        ({"url": "https://169.254.169.254/latest", "event_types": ["key.created"]}, "url"),
        ({"url": "http://example.com/hooks", "event_types": ["key.created"]}, "url"),
        ({"url": "ftp://example.com/", "event_types": ["key.created"]}, "url"),
        ({"url": "https://[::ffff:192.168.0.1]/", "event_types": ["key.created"]}, "url"),
        ({"url": "https://127.0.0.1/", "event_types": ["key.nope"]}, "event_types"),
        ({"url": "https://127.0.0.1/", "event_types": []}, "event_types"),
        (
            {"url": "https://127.0.0.1/", "event_types": ["key.created"], "min_flag_severity": "huge"},
            "min_flag_severity",
        ),
        ({"url": "https://127.0.0.1/", "event_types": ["key.created"], "secret": "mine"}, "secret"),
    ],
)
async def test_bad_endpoints_are_refused_naming_the_field_and_write_nothing(
    client: Client, acme: Caller, runtime: Runtime, body: dict[str, object], field: str | None
) -> None:
    before = await event_count(runtime)
    response = await client.post("/v1/webhook-endpoints", json=body, headers=acme.headers)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert problem(response)["field"] == field
    assert await event_count(runtime) == before


async def test_loopback_is_refused_without_the_development_setting(
    client: Client, acme: Caller, app: Litestar
) -> None:
    app.state.webhooks = dataclasses.replace(app.state.webhooks, allow_loopback=False)
    response = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:8080/", "event_types": ["key.created"]},
        headers=acme.headers,
    )
    assert response.status_code == 422
    assert problem(response)["field"] == "url"
    assert "RESERVEKIT_WEBHOOKS_ALLOW_LOOPBACK" in str(problem(response)["detail"])


async def test_a_revocation_is_delivered_signed_per_standard_webhooks(
    client: Client, acme: Caller, receiver: Receiver
) -> None:
    endpoint = await subscribe(client, acme, receiver.url, ["key.revoked"])
    doomed = await create_key(client, acme, name="doomed")
    await client.post(f"/v1/api-keys/{doomed.key_id}/revoke", headers=acme.headers)
    [request] = await receiver.wait_for(1)
    body = verified(str(endpoint["secret"]), request)
    assert body["type"] == "key.revoked"
    assert body["data"]["id"] == doomed.key_id  # type: ignore[index]
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= set(request.headers)
    assert doomed.secret not in request.body.decode()
    assert "key_hash" not in request.body.decode()
    await asyncio.sleep(0.2)
    assert len(receiver.requests) == 1  # key.created was not subscribed


async def test_a_leak_report_reaches_a_subscribed_endpoint_within_seconds(
    client: Client, acme: Caller, receiver: Receiver
) -> None:
    endpoint = await subscribe(client, acme, receiver.url, ["leak.reported", "flag.raised"])
    leaked = await create_key(client, acme, name="leaked")
    started = asyncio.get_running_loop().time()
    assert (await client.post("/v1/leaks", json={"key": leaked.secret})).status_code == 202
    requests = await receiver.wait_for(2, within=5)
    assert asyncio.get_running_loop().time() - started < 5
    bodies = [verified(str(endpoint["secret"]), r) for r in requests]
    assert [b["type"] for b in bodies] == ["flag.raised", "leak.reported"]  # same position, by message id
    assert bodies[0]["data"]["severity"] == "critical"  # type: ignore[index]
    assert bodies[1]["data"]["key_id"] == leaked.key_id  # type: ignore[index]


async def test_failed_attempts_are_retried_with_the_same_webhook_id(
    client: Client, acme: Caller, receiver: Receiver
) -> None:
    answers = iter([500, "hang", 200])
    receiver.answer = lambda _r: next(answers)
    endpoint = await subscribe(client, acme, receiver.url, ["key.created"])
    await create_key(client, acme, name="third time lucky")
    requests = await receiver.wait_for(3, within=10)
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    for request in requests:
        verified(str(endpoint["secret"]), request)
    for _ in range(50):
        page = (
            await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=acme.headers)
        ).json()
        if page["data"] and page["data"][0]["status"] == "succeeded":
            break
        await asyncio.sleep(0.05)
    [delivery] = page["data"]
    assert delivery["id"] == requests[0].headers["webhook-id"]
    assert [(a["outcome"], a["status_code"]) for a in delivery["attempt_log"]] == [
        ("http_error", 500),
        ("timeout", None),
        ("succeeded", 200),
    ]
    assert all(a["latency_ms"] >= 0 for a in delivery["attempt_log"])


async def test_deliveries_to_one_endpoint_keep_log_order_through_a_failure(
    client: Client, acme: Caller, receiver: Receiver
) -> None:
    failed_once: set[str] = set()

    def first_attempt_fails(request: object) -> int:
        webhook_id = request.headers["webhook-id"]  # type: ignore[attr-defined]
        if webhook_id not in failed_once:
            failed_once.add(webhook_id)
            return 500
        return 200

    receiver.answer = first_attempt_fails
    await subscribe(client, acme, receiver.url, ["key.created"])
    made = [await create_key(client, acme, name=f"k{n}") for n in range(4)]
    requests = await receiver.wait_for(8, within=15)
    order = [json.loads(r.body)["data"]["id"] for r in requests]
    assert order == [k.key_id for k in made for _ in range(2)]  # each fails once, none overtakes


async def test_a_redirect_is_not_followed(client: Client, acme: Caller, receiver: Receiver) -> None:
    receiver.answer = lambda _r: 302
    receiver.extra_headers = {"location": "http://169.254.169.254/latest/meta-data"}
    endpoint = await subscribe(client, acme, receiver.url, ["key.created"])
    await create_key(client, acme, name="redirected")
    await receiver.wait_for(1)
    for _ in range(50):
        page = (
            await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=acme.headers)
        ).json()
        if page["data"] and page["data"][0]["attempt_log"]:
            break
        await asyncio.sleep(0.05)
    assert page["data"][0]["attempt_log"][0]["status_code"] == 302
    assert page["data"][0]["attempt_log"][0]["outcome"] == "http_error"
    assert all(r.path == "/hooks" for r in receiver.requests)


async def test_rolling_the_secret_signs_with_the_new_one_only(
    client: Client, acme: Caller, receiver: Receiver
) -> None:
    endpoint = await subscribe(client, acme, receiver.url, ["key.created"])
    rolled = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/roll-secret", headers=acme.headers)
    assert rolled.status_code == 200
    assert rolled.headers["cache-control"] == "no-store"
    new_secret = rolled.json()["secret"]
    assert new_secret != endpoint["secret"]
    assert rolled.json()["secret_version"] == 2
    await create_key(client, acme, name="after roll")
    [request] = await receiver.wait_for(1)
    verified(new_secret, request)
    with pytest.raises(WebhookVerificationError):
        verified(str(endpoint["secret"]), request)


async def test_send_test_event_and_retry_a_delivery(client: Client, acme: Caller, receiver: Receiver) -> None:
    endpoint = await subscribe(client, acme, receiver.url, ["key.created"])
    queued = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=acme.headers)
    assert queued.status_code == 202
    [first] = await receiver.wait_for(1)
    assert verified(str(endpoint["secret"]), first)["type"] == "webhook.test"
    delivery_id = queued.json()["delivery_id"]
    assert first.headers["webhook-id"] == delivery_id
    for _ in range(50):
        page = (
            await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=acme.headers)
        ).json()
        if page["data"][0]["status"] == "succeeded":
            break
        await asyncio.sleep(0.05)
    retried = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{delivery_id}/retry", headers=acme.headers
    )
    assert retried.status_code == 202
    requests = await receiver.wait_for(2)
    assert requests[1].headers["webhook-id"] == delivery_id
    missing = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/msg_nope/retry", headers=acme.headers
    )
    assert missing.status_code == 404


async def test_update_delete_and_scoping(
    client: Client, acme: Caller, globex: Caller, runtime: Runtime
) -> None:
    endpoint = await subscribe(client, acme, "https://127.0.0.1/hooks", ["key.created"])
    url = f"/v1/webhook-endpoints/{endpoint['id']}"
    assert (await client.get(url, headers=globex.headers)).status_code == 404
    changed = await client.patch(
        url, json={"enabled": False, "event_types": ["key.revoked"]}, headers=acme.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "disabled"
    assert changed.json()["event_types"] == ["key.revoked"]
    before = await event_count(runtime)
    bad = await client.patch(url, json={"url": "https://10.1.2.3/"}, headers=acme.headers)
    assert bad.status_code == 422
    assert await event_count(runtime) == before
    assert (await client.delete(url, headers=acme.headers)).status_code == 204
    assert (await client.get(url, headers=acme.headers)).status_code == 404
    assert (await client.get("/v1/webhook-endpoints", headers=acme.headers)).json()["data"] == []
    assert "webhook_endpoint_deleted" in await _types(runtime)


async def test_an_endpoint_s_changed_event_types_decide_what_it_is_sent_next(
    client: Client, acme: Caller, receiver: Receiver
) -> None:
    """The dispatcher fans out from the outbox projection's endpoint rows: a PATCH must reach them."""
    endpoint = await subscribe(client, acme, receiver.url, ["key.created"])
    changed = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"event_types": ["key.revoked"]}, headers=acme.headers
    )
    assert changed.status_code == 200, changed.text
    key = await create_key(client, acme, name="made after the change")
    await client.post(f"/v1/api-keys/{key.key_id}/revoke", headers=acme.headers)
    [request] = await receiver.wait_for(1)
    assert verified(str(endpoint["secret"]), request)["type"] == "key.revoked"


async def test_webhook_routes_need_the_webhook_scopes(client: Client, acme: Caller) -> None:
    reader = await create_key(client, acme, name="reader", scopes=["webhooks:read"])
    assert (await client.get("/v1/webhook-endpoints", headers=reader.headers)).status_code == 200
    refused = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://127.0.0.1/", "event_types": ["key.created"]},
        headers=reader.headers,
    )
    assert refused.status_code == 403
    none = await create_key(client, acme, name="none", scopes=["services:read"])
    assert (await client.get("/v1/webhook-endpoints", headers=none.headers)).status_code == 403


async def test_delivery_metrics_are_exported(client: Client, acme: Caller, receiver: Receiver) -> None:
    await subscribe(client, acme, receiver.url, ["key.created"])
    await create_key(client, acme, name="counted")
    await receiver.wait_for(1)
    for _ in range(50):
        metrics = (await client.get("/metrics")).text
        if 'reservekit_webhook_attempts_total{event_type="key.created",outcome="succeeded"} 1.0' in metrics:
            break
        await asyncio.sleep(0.05)
    assert 'reservekit_webhook_attempts_total{event_type="key.created",outcome="succeeded"} 1.0' in metrics
    assert "reservekit_webhook_attempt_seconds_bucket" in metrics


async def test_secrets_are_encrypted_at_rest(client: Client, acme: Caller, runtime: Runtime) -> None:
    endpoint = await subscribe(client, acme, "https://127.0.0.1/hooks", ["key.created"])
    async with runtime.engine.connect() as conn:
        [row] = list(await conn.execute(text("SELECT ciphertext FROM webhook_secrets")))
    assert str(endpoint["secret"]) not in row.ciphertext
    assert (
        runtime.webhooks.box.open(row.ciphertext, endpoint_id=str(endpoint["id"]), version=1)
        == endpoint["secret"]
    )
    with pytest.raises(InvalidTag):  # AES-GCM binds the ciphertext to its endpoint
        runtime.webhooks.box.open(row.ciphertext, endpoint_id="whe_other", version=1)


async def test_usage_flags_and_rate_limits_reach_endpoints_by_severity(
    client: Client, acme: Caller, runtime: Runtime, receiver: Receiver
) -> None:
    high = await subscribe(client, acme, receiver.url, ["flag.raised", "rate_limit.reached"])
    critical_only = await client.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url.replace("/hooks", "/critical"), "event_types": ["flag.raised"],
              "min_flag_severity": "critical"},
        headers=acme.headers,
    )  # fmt: skip
    assert critical_only.status_code == 201
    doomed = await create_key(client, acme, name="doomed")
    await client.post(f"/v1/api-keys/{doomed.key_id}/revoke", headers=acme.headers)
    await seed(runtime, used(runtime, doomed, "revoked"), used(runtime, acme, "rate_limited"),
               used(runtime, acme, "rate_limited"))  # fmt: skip
    requests = await receiver.wait_for(2)
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == 2  # one flag (high), one rate-limit minute; nothing for "critical"
    bodies = sorted((verified(str(high["secret"]), r) for r in requests), key=lambda b: str(b["type"]))
    assert [b["type"] for b in bodies] == ["flag.raised", "rate_limit.reached"]
    assert bodies[0]["data"]["rule"] == "revoked_key_used"  # type: ignore[index]
    assert bodies[0]["data"]["severity"] == "high"  # type: ignore[index]
    assert bodies[1]["data"]["account_id"] == acme.account_id  # type: ignore[index]
    assert all(r.path == "/hooks" for r in requests)


async def test_flags_present_when_the_flag_rules_change_are_a_baseline_not_sent(
    client: Client, acme: Caller, runtime: Runtime, receiver: Receiver
) -> None:
    await subscribe(client, acme, receiver.url, ["flag.raised"])
    await runtime.dispatcher.stop()
    async with runtime.engine.begin() as conn:  # as if the detector thresholds (the version) changed
        await conn.execute(
            text("UPDATE webhook_dispatch_cursors SET position = -7 WHERE name = 'usage_flags_version'")
        )
    doomed = await create_key(client, acme, name="doomed")
    await seed(runtime, used(runtime, doomed, "revoked"))
    await runtime.dispatcher.materialise_all()
    async with runtime.engine.connect() as conn:
        pending = await conn.scalar(text("SELECT count(*) FROM webhook_deliveries"))
        version = await conn.scalar(
            text("SELECT position FROM webhook_dispatch_cursors WHERE name = 'usage_flags_version'")
        )
    assert pending == 0
    assert version != -7
    second = await create_key(client, acme, name="second")
    await seed(runtime, used(runtime, second, "revoked"))
    await runtime.dispatcher.materialise_all()
    async with runtime.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM webhook_deliveries")) == 1


async def test_only_a_small_prefix_of_a_response_body_is_read(
    client: Client, acme: Caller, receiver: Receiver
) -> None:
    receiver.answer = lambda _r: "endless"
    endpoint = await subscribe(client, acme, receiver.url, ["key.created"])
    await create_key(client, acme, name="chatty receiver")
    await receiver.wait_for(1)
    for _ in range(100):
        page = (
            await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=acme.headers)
        ).json()
        if page["data"] and page["data"][0]["attempt_log"]:
            break
        await asyncio.sleep(0.05)
    [attempt, *_] = page["data"][0]["attempt_log"]
    assert attempt["outcome"] == "succeeded"  # not a timeout: reading stopped after the first bytes
    assert attempt["latency_ms"] < 500


async def test_a_key_edited_over_the_api_is_delivered_as_key_updated(
    client: Client, acme: Caller, receiver: Receiver
) -> None:
    endpoint = await subscribe(client, acme, receiver.url, ["key.updated"])
    edited = await create_key(client, acme, name="before")
    response = await client.patch(
        f"/v1/api-keys/{edited.key_id}", json={"name": "after"}, headers=acme.headers
    )
    assert response.status_code == 200, response.text
    [request] = await receiver.wait_for(1)
    body = verified(str(endpoint["secret"]), request)
    assert body["type"] == "key.updated"
    assert body["data"]["name"] == "after"  # type: ignore[index]
    assert "key_hash" not in request.body.decode()
