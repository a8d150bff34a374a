"""One access line per request: route template, status, latency, request id, key id, client IP; no secret."""

from __future__ import annotations

import msgspec
from litestar import Litestar
from structlog.testing import capture_logs

from reservekit.settings import Settings
from reservekit.web.app import create_app
from tests.web.conftest import Caller, Client, serving


def access_lines(logs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [entry for entry in logs if entry["event"] == "http_request"]


async def test_each_request_is_one_line_naming_its_route_template_and_key(
    client: Client, acme: Caller
) -> None:
    with capture_logs() as logs:
        listed = await client.get("/v1/services", headers=acme.headers)
        one = await client.get(f"/v1/api-keys/{acme.key_id}", headers=acme.headers)
    assert (listed.status_code, one.status_code) == (200, 200)
    lines = access_lines(logs)
    assert len(lines) == 2
    first, second = lines
    assert {k: first[k] for k in ("method", "route", "status", "key_id", "client_ip", "log_level")} == {
        "method": "GET",
        "route": "/v1/services",
        "status": 200,
        "key_id": acme.key_id,
        "client_ip": "203.0.113.10",
        "log_level": "info",
    }
    assert first["request_id"] == listed.headers["x-request-id"]
    assert isinstance(first["latency_ms"], float)
    assert first["latency_ms"] >= 0
    # The template, never the raw path with the id in it.
    assert second["route"] == "/v1/api-keys/{key_id}"
    assert second["request_id"] == one.headers["x-request-id"]


async def test_refused_and_unrouted_requests_are_logged_without_a_key(client: Client) -> None:
    with capture_logs() as logs:
        refused = await client.get("/v1/services", headers={"X-Request-Id": "trace-7"})
        missing = await client.get("/v1/no/such/route")
        wrong = await client.delete("/healthz")
        odd = await client.request("BREW", "/v1/services")
    lines = access_lines(logs)
    assert [(e["method"], e["route"], e["status"], e["key_id"]) for e in lines] == [
        ("GET", "/v1/services", 401, None),
        ("GET", "unmatched", 404, None),
        ("DELETE", "unmatched", 405, None),
        ("OTHER", "unmatched", odd.status_code, None),
    ]
    assert lines[0]["request_id"] == "trace-7" == refused.headers["x-request-id"]
    assert lines[1]["request_id"] == missing.headers["x-request-id"]
    assert lines[2]["request_id"] == wrong.headers["x-request-id"]
    assert {e["client_ip"] for e in lines} == {"203.0.113.10"}


async def test_a_secret_in_the_header_body_and_path_is_never_logged(client: Client, acme: Caller) -> None:
    with capture_logs() as logs:
        verify = await client.post(
            "/v1/keys/verify", json={"key": acme.secret}, headers={"Authorization": f"Bearer {acme.secret}"}
        )
        await client.post("/v1/leaks", json={"key": acme.secret}, headers=acme.headers)
        await client.get(f"/v1/{acme.secret}", headers=acme.headers)
        await client.get(
            f"/v1/services?key={acme.secret}", headers={"Authorization": f"Bearer {acme.secret}x"}
        )
    lines = access_lines(logs)
    assert len(lines) == 4
    assert verify.status_code in {200, 403}
    assert [e["route"] for e in lines] == ["/v1/keys/verify", "/v1/leaks", "unmatched", "/v1/services"]
    text = repr(logs) + msgspec.json.encode(logs).decode()
    assert acme.secret not in text
    assert acme.secret[:20] not in text
    assert "sk_rsv_" not in text
    assert "authorization" not in text.lower()
    assert "bearer" not in text.lower()


async def test_a_cors_preflight_is_logged_with_the_callers_ip(client: Client) -> None:
    with capture_logs() as logs:
        preflight = await client.options(
            "/v1/services",
            headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"},
        )
    assert preflight.status_code == 204
    [line] = access_lines(logs)
    assert (line["method"], line["route"], line["status"], line["client_ip"]) == (
        "OPTIONS",
        "/v1/services",
        204,
        "203.0.113.10",
    )
    # Answered before the auth middleware, it is still named, in the response and its access line.
    assert preflight.headers["x-request-id"].startswith("req_")
    assert line["request_id"] == preflight.headers["x-request-id"]
    named = await client.options(
        "/v1/services",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "GET",
            "X-Request-Id": "req_preflight_1",
        },
    )
    assert named.headers["x-request-id"] == "req_preflight_1"


async def test_behind_a_trusted_proxy_an_unrouted_request_names_the_forwarded_client(
    settings: Settings,
) -> None:
    app: Litestar = create_app(msgspec.structs.replace(settings, trusted_proxies=("10.0.0.0/8",)))
    async with serving(app, client_ip="10.0.0.2") as client:
        with capture_logs() as logs:
            await client.get("/nowhere", headers={"X-Forwarded-For": "198.51.100.7"})
            await client.get("/healthz", headers={"X-Forwarded-For": "198.51.100.8"})
    assert [e["client_ip"] for e in access_lines(logs)] == ["198.51.100.7", "198.51.100.8"]


async def test_the_access_log_can_be_switched_off(settings: Settings) -> None:
    app: Litestar = create_app(msgspec.structs.replace(settings, access_log=False))
    async with serving(app) as client:
        with capture_logs() as logs:
            assert (await client.get("/healthz")).status_code == 200
        metrics = await client.get("/metrics")
    assert access_lines(logs) == []
    # The latency histogram still counts it.
    counted = 'reservekit_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1.0'
    assert counted in metrics.text
