"""SPEC §4 over HTTP, row by row, plus the order in which the checks answer."""

from __future__ import annotations

import msgspec
import pytest

from reservekit.clock import FakeClock
from reservekit.keys.tokens import generate_secret
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.web.app import create_app
from tests.web.conftest import Caller, Client, create_key, make_account, problem, serving

CHALLENGE = 'Bearer realm="reservekit"'
CHALLENGE_WITH_TOKEN = 'Bearer realm="reservekit", error="invalid_token"'


def assert_problem(response: object, status: int, title: str, code: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body = problem(response)
    assert body["title"] == title
    assert body["status"] == status
    assert body["code"] == code
    assert str(body["type"]).endswith(code)
    assert str(body["request_id"]) == response.headers["x-request-id"]  # type: ignore[attr-defined]


async def test_row1_missing_header(client: Client) -> None:
    response = await client.get("/v1/services")
    assert_problem(response, 401, "Authorization header is missing", "authorization_missing")
    assert response.headers["www-authenticate"] == CHALLENGE


@pytest.mark.parametrize(
    ("header", "challenge"),
    [
        ("Basic dXNlcjpwYXNz", CHALLENGE),
        ("Bearer", CHALLENGE),
        ("Bearer ", CHALLENGE),
        ("sk_rsv_" + "a" * 38, CHALLENGE),
        ("Token " + generate_secret(), CHALLENGE),
        ("Bearer sk_rsv_short", CHALLENGE_WITH_TOKEN),
        ("Bearer sk_test_" + "a" * 38, CHALLENGE_WITH_TOKEN),
        ("Bearer " + generate_secret()[:-1] + "!", CHALLENGE_WITH_TOKEN),
    ],
    # Stable ids: the secrets are random, and pytest-xdist workers must collect the same names.
    ids=[
        "basic",
        "bearer-alone",
        "bearer-space",
        "no-scheme",
        "token-scheme",
        "short",
        "other-prefix",
        "bad-end",
    ],
)
async def test_row2_malformed_header_or_token(client: Client, header: str, challenge: str) -> None:
    response = await client.get("/v1/services", headers={"Authorization": header})
    assert_problem(response, 401, "Authorization header is malformed", "authorization_malformed")
    assert response.headers["www-authenticate"] == challenge


async def test_row2_bad_checksum_is_malformed_without_touching_the_database(
    client: Client, runtime: Runtime
) -> None:
    secret = generate_secret()
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    await runtime.engine.dispose()
    runtime.engine.url = runtime.engine.url.set(database="/nonexistent/dir/x.db", host=None)  # type: ignore[misc]
    response = await client.get("/v1/services", headers={"Authorization": f"Bearer {tampered}"})
    assert_problem(response, 401, "Authorization header is malformed", "authorization_malformed")


async def test_scheme_is_case_insensitive(client: Client, acme: Caller) -> None:
    response = await client.get("/v1/services", headers={"Authorization": f"bEaReR {acme.secret}"})
    assert response.status_code == 200


async def test_row3_well_formed_but_unknown_key(client: Client, acme: Caller) -> None:
    response = await client.get("/v1/services", headers={"Authorization": f"Bearer {generate_secret()}"})
    assert_problem(response, 401, "API key is invalid", "api_key_invalid")
    assert response.headers["www-authenticate"] == CHALLENGE_WITH_TOKEN


async def test_row4_revoked_key(client: Client, acme: Caller) -> None:
    other = await create_key(client, acme, name="doomed")
    assert (await client.post(f"/v1/api-keys/{other.key_id}/revoke", headers=acme.headers)).status_code == 200
    response = await client.get("/v1/services", headers=other.headers)
    assert_problem(response, 401, "API key revoked", "api_key_revoked")


async def test_row5_expired_key(client: Client, acme: Caller, clock: FakeClock) -> None:
    expires = clock.now().replace(hour=13).isoformat()
    short = await create_key(client, acme, name="short", expires_at=expires)
    assert (await client.get("/v1/services", headers=short.headers)).status_code == 200
    clock.advance(3600)
    response = await client.get("/v1/services", headers=short.headers)
    assert_problem(response, 401, "API key expired", "api_key_expired")


async def test_row6_origin_mismatch(client: Client, acme: Caller) -> None:
    web = await create_key(client, acme, name="web", domains=["app.example.com"])
    ok = await client.get("/v1/services", headers={**web.headers, "Origin": "https://app.example.com"})
    assert ok.status_code == 200
    response = await client.get("/v1/services", headers={**web.headers, "Origin": "https://evil.example.net"})
    assert_problem(response, 403, "Origin does not match API key domain", "origin_mismatch")


async def test_row7_scope_denied(client: Client, acme: Caller) -> None:
    reader = await create_key(client, acme, name="reader", scopes=["services:read"])
    assert (await client.get("/v1/services", headers=reader.headers)).status_code == 200
    response = await client.post(
        "/v1/services", json={"name": "Cut", "duration_minutes": 30}, headers=reader.headers
    )
    assert_problem(response, 403, "API key does not have access to this endpoint", "scope_denied")
    listing = await client.get("/v1/api-keys", headers=reader.headers)
    assert listing.status_code == 403


async def test_row8_rate_limit_with_headers_on_200_and_429(settings: Settings, clock: FakeClock) -> None:
    limited = msgspec.structs.replace(settings, plans={"free": 3, "pro": 600, "enterprise": 6000})
    app = create_app(limited, clock=clock)
    async with serving(app) as client:
        acme = await make_account(app.state.runtime)
        remaining = []
        for _ in range(3):
            ok = await client.get("/v1/services", headers=acme.headers)
            assert ok.status_code == 200
            assert ok.headers["x-ratelimit-limit"] == "3"
            assert ok.headers["ratelimit-policy"] == '"default";q=3;w=60'
            remaining.append(ok.headers["x-ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]
        refused = await client.get("/v1/services", headers=acme.headers)
        assert_problem(refused, 429, "Rate limit exceeded", "rate_limited")
        assert refused.headers["retry-after"] == "20"
        assert int(refused.headers["x-ratelimit-reset"]) == int(clock.timestamp()) + 60
        clock.advance(20)
        assert (await client.get("/v1/services", headers=acme.headers)).status_code == 200


async def test_all_keys_of_an_account_share_its_quota(settings: Settings, clock: FakeClock) -> None:
    limited = msgspec.structs.replace(settings, plans={"free": 2, "pro": 600, "enterprise": 6000})
    app = create_app(limited, clock=clock)
    async with serving(app) as client:
        acme = await make_account(app.state.runtime)
        other = await create_key(client, acme, name="second")  # spends one request
        assert (await client.get("/v1/services", headers=other.headers)).status_code == 200
        assert (await client.get("/v1/services", headers=acme.headers)).status_code == 429


async def test_checks_answer_in_spec_order(client: Client, acme: Caller, clock: FakeClock) -> None:
    # Revoked beats expired, origin and scope.
    narrow = await create_key(
        client,
        acme,
        name="n",
        domains=["a.example.com"],
        scopes=["keys:read"],
        expires_at="2026-06-01T12:30:00Z",
    )
    await client.post(f"/v1/api-keys/{narrow.key_id}/revoke", headers=acme.headers)
    clock.advance(3600)
    headers = {**narrow.headers, "Origin": "https://evil.test"}
    assert problem(await client.get("/v1/services", headers=headers))["code"] == "api_key_revoked"
    # Origin beats scope.
    scoped = await create_key(client, acme, name="s", domains=["a.example.com"], scopes=["keys:read"])
    headers = {**scoped.headers, "Origin": "https://evil.test"}
    assert problem(await client.get("/v1/services", headers=headers))["code"] == "origin_mismatch"
    headers = {**scoped.headers, "Origin": "https://a.example.com"}
    assert problem(await client.get("/v1/services", headers=headers))["code"] == "scope_denied"


async def test_failed_attempts_are_limited_per_client_ip(settings: Settings, clock: FakeClock) -> None:
    strict = msgspec.structs.replace(settings, failed_auth_per_ip_per_minute=3)
    app = create_app(strict, clock=clock)
    async with serving(app) as client:
        acme = await make_account(app.state.runtime)
        guess = {"Authorization": f"Bearer {generate_secret()}"}
        guesses = [await client.get("/v1/services", headers=guess) for _ in range(4)]
        assert [r.status_code for r in guesses] == [401, 401, 401, 429]
        assert problem(guesses[-1])["title"] == "Rate limit exceeded"
        assert guesses[-1].headers["retry-after"] == "20"
        assert "x-ratelimit-limit" not in guesses[-1].headers  # the plan's quota is not what ran out
        # Missing or malformed headers spend the same budget; a spoofed X-Forwarded-For from an
        # untrusted peer does not buy a fresh one.
        assert (await client.get("/v1/services")).status_code == 429
        spoofed = await client.get("/v1/services", headers={**guess, "X-Forwarded-For": "198.51.100.7"})
        assert spoofed.status_code == 429
        # A key this replica already knows keeps working from that IP (no lock-out behind a shared NAT).
        assert (await client.get("/v1/services", headers=acme.headers)).status_code == 200
        clock.advance(60)
        assert (await client.get("/v1/services", headers=guess)).status_code == 401


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/schema", "/schema/openapi.json"])
async def test_operational_endpoints_need_no_key(client: Client, path: str) -> None:
    assert (await client.get(path)).status_code == 200


async def test_request_id_is_echoed_when_safe_and_generated_otherwise(client: Client) -> None:
    echoed = await client.get("/v1/services", headers={"X-Request-ID": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"
    assert problem(echoed)["request_id"] == "trace-123"
    replaced = await client.get("/v1/services", headers={"X-Request-ID": "bad id\nwith newline"})
    assert replaced.headers["x-request-id"].startswith("req_")


async def test_a_key_only_sees_its_own_account(
    client: Client, acme: Caller, globex: Caller, runtime: Runtime
) -> None:
    del runtime
    created = await client.post(
        "/v1/services", json={"name": "Cut", "duration_minutes": 30}, headers=acme.headers
    )
    service_id = created.json()["id"]
    assert (await client.get(f"/v1/services/{service_id}", headers=globex.headers)).status_code == 404
    assert (await client.get("/v1/services", headers=globex.headers)).json()["data"] == []
    for method, path in [
        ("GET", f"/v1/api-keys/{acme.key_id}"),
        ("POST", f"/v1/api-keys/{acme.key_id}/revoke"),
        ("POST", f"/v1/api-keys/{acme.key_id}/rotate"),
    ]:
        foreign = await client.request(method, path, headers=globex.headers)
        missing = await client.request(
            method, path.replace(acme.key_id, "key_" + "x" * 22), headers=globex.headers
        )
        assert foreign.status_code == missing.status_code == 404
        assert problem(foreign)["detail"] == str(problem(missing)["detail"]).replace(
            "key_" + "x" * 22, acme.key_id
        )
    assert (await client.get("/v1/services", headers=acme.headers)).status_code == 200
