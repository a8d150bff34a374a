"""One mistake, one answer: every route reads timestamps, cursors and limits through web/params.py."""

from __future__ import annotations

import pytest

from tests.web.conftest import Caller, Client, problem

ROUTES_WITH_SINCE = ["/v1/audit/events", "/v1/audit/usage", "/v1/audit/flags", "/v1/api-keys/{key_id}/usage"]
BAD_INSTANTS = ["yesterday", "2026-06-01T12:00:00", "2026-06-01", "2026-13-01T00:00:00Z"]


@pytest.mark.parametrize("route", ROUTES_WITH_SINCE)
@pytest.mark.parametrize("since", BAD_INSTANTS)
async def test_a_bad_since_is_the_same_400_on_every_route(
    client: Client, acme: Caller, route: str, since: str
) -> None:
    response = await client.get(
        route.format(key_id=acme.key_id), params={"since": since}, headers=acme.headers
    )
    assert response.status_code == 400, response.text
    body = problem(response)
    assert (body["code"], body["title"], body["field"]) == ("invalid_request", "Invalid request", "since")
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("as_of", BAD_INSTANTS)
async def test_a_bad_as_of_is_the_same_400(client: Client, acme: Caller, as_of: str) -> None:
    response = await client.get("/v1/audit/keys", params={"as_of": as_of}, headers=acme.headers)
    assert response.status_code == 400, response.text
    assert (problem(response)["code"], problem(response)["field"]) == ("invalid_request", "as_of")


@pytest.mark.parametrize("route", ["/v1/api-keys", "/v1/services", "/v1/audit/events", "/v1/audit/flags"])
@pytest.mark.parametrize("limit", ["0", "101", "many"])
async def test_a_limit_out_of_range_is_a_400_everywhere(
    client: Client, acme: Caller, route: str, limit: str
) -> None:
    response = await client.get(route, params={"limit": limit}, headers=acme.headers)
    assert response.status_code == 400, response.text
    assert (problem(response)["code"], problem(response)["field"]) == ("invalid_request", "limit")
