"""Browsers on an integrator's domain can call the API with a domain-restricted key (issue 9, CORS)."""

from __future__ import annotations

import msgspec
import pytest

from reservekit.runtime import Runtime
from reservekit.settings import Settings, SettingsError, load_settings
from reservekit.web.app import create_app
from tests.web.conftest import Caller, Client, create_key, make_account, problem, serving
from tests.web.test_usage_recording import usage_rows

SHOP = "https://shop.example.com"
PREFLIGHT = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}


async def test_a_preflight_is_answered_before_authentication_and_spends_nothing(
    client: Client, runtime: Runtime
) -> None:
    for _ in range(40):  # more than the 30 failed authentications an IP may spend per minute
        answer = await client.options("/v1/services", headers={"Origin": SHOP, **PREFLIGHT})
        assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == SHOP
    allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert allowed >= {"authorization", "content-type", "idempotency-key"}
    assert "GET" in answer.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in answer.headers
    await runtime.usage.flush()
    assert await usage_rows(runtime) == []
    unauthenticated = await client.get("/v1/services", headers={"Origin": SHOP})
    assert unauthenticated.status_code == 401  # not 429: the preflights spent no budget


async def test_the_keys_domain_rule_decides_the_real_request_and_the_page_can_read_the_answer(
    client: Client, acme: Caller
) -> None:
    shop_key = await create_key(client, acme, name="shop", domains=["shop.example.com"])
    ok = await client.get("/v1/services", headers={**shop_key.headers, "Origin": SHOP})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == SHOP
    exposed = {h.strip().lower() for h in ok.headers["access-control-expose-headers"].split(",")}
    assert exposed >= {"x-ratelimit-remaining", "x-ratelimit-limit", "x-ratelimit-reset", "x-request-id"}
    elsewhere = await client.get(
        "/v1/services", headers={**shop_key.headers, "Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    assert problem(elsewhere)["title"] == "Origin does not match API key domain"
    assert elsewhere.headers["access-control-allow-origin"] == "https://evil.example"


async def test_management_routes_are_open_only_to_configured_origins(settings: Settings) -> None:
    admin = "https://admin.example.com"
    app = create_app(msgspec.structs.replace(settings, cors_allowed_origins=(admin,)))
    async with serving(app) as client:
        acme = await make_account(app.state.runtime)
        refused = await client.options("/v1/api-keys", headers={"Origin": SHOP, **PREFLIGHT})
        assert refused.status_code == 204
        assert "access-control-allow-origin" not in refused.headers
        granted = await client.options("/v1/api-keys", headers={"Origin": admin, **PREFLIGHT})
        assert granted.headers["access-control-allow-origin"] == admin
        listed = await client.get("/v1/api-keys", headers={**acme.headers, "Origin": SHOP})
        assert listed.status_code == 200  # the server answers; the browser withholds it from that page
        assert "access-control-allow-origin" not in listed.headers


def test_allowed_origins_are_read_from_the_environment_and_checked() -> None:
    env = {"RESERVEKIT_CORS_ALLOWED_ORIGINS": "https://admin.example.com, http://localhost:3000"}
    assert load_settings(env).cors_allowed_origins == ("https://admin.example.com", "http://localhost:3000")
    with pytest.raises(SettingsError, match="RESERVEKIT_CORS_ALLOWED_ORIGINS"):
        load_settings({"RESERVEKIT_CORS_ALLOWED_ORIGINS": "admin.example.com/path"})
