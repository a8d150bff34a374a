"""One opaque cursor format on every listed route (issue 9): a cursor this API did not hand out for that
listing is 400 ``invalid_request`` naming ``cursor``, on every one of them, before any query."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar

from reservekit.runtime import Runtime
from reservekit.web.pagination import encode_cursor
from tests.web.conftest import Caller, Client, make_account, problem

# Every GET that takes ?cursor= (test_every_listing_route_is_covered keeps this list whole).
LISTINGS = {
    "/v1/accounts": "accounts",
    "/v1/api-keys": "api_keys",
    "/v1/services": "services",
    "/v1/webhook-endpoints": "webhook_endpoints",
    "/v1/webhook-endpoints/{endpoint_id}/deliveries": "deliveries",
    "/v1/audit/events": "audit_events",
    "/v1/audit/usage": "audit_usage",
    "/v1/audit/flags": "flags",
}
GARBAGE = [
    "garbage",
    "key_x",  # an old, plain id cursor
    "5",  # an old position cursor
    "1.flg_x",  # an old flag cursor
    "W10",  # base64url of [] : well encoded, wrong shape
    encode_cursor("api_keys", "key_\x00"),  # an id holding NUL would reach the database
    "%%%",
]


def _url(route: str) -> str:
    return route.format(endpoint_id="whe_doesnotexist")


@pytest.mark.parametrize("route", sorted(LISTINGS))
async def test_a_cursor_this_api_did_not_return_is_400_on_every_listing(
    client: Client, operator: Caller, route: str
) -> None:
    for cursor in GARBAGE:
        response = await client.get(_url(route), params={"cursor": cursor}, headers=operator.headers)
        assert response.status_code == 400, (cursor, response.text)
        body = problem(response)
        assert (body["code"], body["field"]) == ("invalid_request", "cursor")
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("route", sorted(LISTINGS))
async def test_a_cursor_of_another_listing_is_400(client: Client, operator: Caller, route: str) -> None:
    other = "flags" if LISTINGS[route] != "flags" else "api_keys"
    value: Any = (1, "flg_x") if other == "flags" else "key_x"
    response = await client.get(
        _url(route), params={"cursor": encode_cursor(other, value)}, headers=operator.headers
    )
    assert response.status_code == 400, response.text
    assert problem(response)["field"] == "cursor"


def test_every_listing_route_is_covered(app: Litestar) -> None:
    with_cursor = {
        path
        for path, item in (app.openapi_schema.paths or {}).items()
        if item.get is not None
        and any(getattr(p, "name", None) == "cursor" for p in item.get.parameters or [])
    }
    assert with_cursor == set(LISTINGS)


async def _pages(client: Client, caller: Caller, route: str) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    for _ in range(20):  # bounded: a listing that never ends fails instead of hanging
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        response = await client.get(route, params=params, headers=caller.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([str(row.get("id", row.get("position"))) for row in body["data"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert isinstance(cursor, str)
    raise AssertionError(f"{route} did not end within 20 pages")


# (Not /v1/audit/usage: each page read is itself a new usage row.)
@pytest.mark.parametrize("route", ["/v1/accounts", "/v1/api-keys", "/v1/audit/events"])
async def test_next_cursor_walks_every_row_once(
    client: Client, runtime: Runtime, operator: Caller, route: str
) -> None:
    await make_account(runtime, "Second")
    await client.post("/v1/api-keys", json={"name": "two"}, headers=operator.headers)
    pages = await _pages(client, operator, route)
    rows = [row for page in pages for row in page]
    assert len(pages) >= 2
    assert len(rows) == len(set(rows))
