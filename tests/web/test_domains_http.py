"""SPEC §4 domain rule over HTTP: Origin, then Referer; exact or *. subdomain; refusal when neither."""

from __future__ import annotations

import pytest

from tests.web.conftest import Caller, Client, create_key, problem

ALLOWED = [
    {"Origin": "https://shop.example.com"},
    {"Origin": "https://SHOP.Example.COM."},
    {"Origin": "http://shop.example.com:8080"},
    {"Origin": "https://a.partner.io"},
    {"Origin": "https://deep.a.partner.io"},
    {"Referer": "https://shop.example.com/checkout?x=1"},
]
REFUSED = [
    {},
    {"Origin": "null"},
    {"Origin": "https://partner.io"},  # a *. entry does not cover the apex
    {"Origin": "https://shop.example.com.evil.net"},
    {"Origin": "https://evilshop.example.com"},
    {"Origin": "https://xpartner.io"},
    {"Origin": "https://evil.net", "Referer": "https://shop.example.com/"},  # Origin wins over Referer
    {"Referer": "not a url"},
]


@pytest.fixture
async def web_key(client: Client, acme: Caller) -> Caller:
    return await create_key(client, acme, name="web", domains=["shop.example.com", "*.partner.io"])


@pytest.mark.parametrize("extra", ALLOWED)
async def test_matching_origins_are_served(client: Client, web_key: Caller, extra: dict[str, str]) -> None:
    assert (await client.get("/v1/services", headers={**web_key.headers, **extra})).status_code == 200


@pytest.mark.parametrize("extra", REFUSED)
async def test_other_origins_are_refused(client: Client, web_key: Caller, extra: dict[str, str]) -> None:
    response = await client.get("/v1/services", headers={**web_key.headers, **extra})
    assert response.status_code == 403
    assert problem(response)["title"] == "Origin does not match API key domain"


async def test_unrestricted_keys_ignore_origin(client: Client, acme: Caller) -> None:
    assert (await client.get("/v1/services", headers={**acme.headers, "Origin": "null"})).status_code == 200
