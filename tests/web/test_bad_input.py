"""Bad input gets a clear 4xx problem naming the field, and writes nothing."""

from __future__ import annotations

import msgspec
import pytest

from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.web.app import create_app
from tests.web.conftest import Caller, Client, create_key, event_count, make_account, problem, serving

BAD_KEY_BODIES = [
    ({"name": 42}, 422, "name"),
    ({"domains": "example.com"}, 422, "domains"),
    ({"domains": ["https://example.com/path"]}, 422, "domains"),
    ({"domains": ["exa mple.com"]}, 422, "domains"),
    ({"domains": ["*.com."[:-1] + "*"]}, 422, "domains"),
    ({"domains": ["a.*.example.com"]}, 422, "domains"),
    ({"scopes": ["services:delete"]}, 422, "scopes"),
    ({"scopes": ["platform:admin"]}, 422, "scopes"),
    ({"scopes": []}, 422, "scopes"),
    ({"expires_at": "tomorrow"}, 422, "expires_at"),
    ({"expires_at": "2020-01-01T00:00:00Z"}, 422, "expires_at"),
    ({"expires_at": "2030-01-01T00:00:00"}, 422, "expires_at"),
    ({"nmae": "typo"}, 422, "nmae"),
    ({"name": "x" * 201}, 422, "name"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_KEY_BODIES)
async def test_bad_key_bodies(
    client: Client, acme: Caller, runtime: Runtime, body: dict[str, object], status: int, field: str
) -> None:
    before = await event_count(runtime)
    response = await client.post("/v1/api-keys", json=body, headers=acme.headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem(response)["field"] == field
    assert await event_count(runtime) == before


async def test_a_key_cannot_grant_scopes_it_does_not_hold(
    client: Client, acme: Caller, runtime: Runtime
) -> None:
    limited = await create_key(client, acme, name="keys only", scopes=["keys:read", "keys:write"])
    before = await event_count(runtime)
    response = await client.post("/v1/api-keys", json={"scopes": ["audit:read"]}, headers=limited.headers)
    assert response.status_code == 403
    assert problem(response)["field"] == "scopes"
    assert await event_count(runtime) == before
    # Without explicit scopes, the new key gets what the creating key can grant.
    default = await client.post("/v1/api-keys", json={}, headers=limited.headers)
    assert default.json()["scopes"] == ["keys:read", "keys:write"]


async def test_not_json_and_oversized_bodies(settings: Settings, runtime: Runtime) -> None:
    del runtime
    small = msgspec.structs.replace(settings, max_body_bytes=1024)
    app = create_app(small)
    async with serving(app) as client:
        acme = await make_account(app.state.runtime)
        before = await event_count(app.state.runtime)
        garbage = await client.post(
            "/v1/api-keys", content=b"{not json", headers={**acme.headers, "Content-Type": "application/json"}
        )
        assert garbage.status_code == 400
        huge = await client.post("/v1/api-keys", json={"name": "x" * 5000}, headers=acme.headers)
        assert huge.status_code == 413
        assert huge.headers["content-type"].startswith("application/problem+json")
        assert await event_count(app.state.runtime) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"duration_minutes": 30}, "name"),
        ({"name": "Cut", "duration_minutes": 0}, "duration_minutes"),
        ({"name": "Cut", "duration_minutes": "thirty"}, "duration_minutes"),
        ({"name": "   ", "duration_minutes": 30}, "name"),
        ({"name": "Cut", "duration_minutes": 30, "price": 10}, "price"),
    ],
)
async def test_bad_service_bodies_write_nothing(
    client: Client, acme: Caller, body: dict[str, object], field: str
) -> None:
    response = await client.post("/v1/services", json=body, headers=acme.headers)
    assert response.status_code in (400, 422)
    assert problem(response)["field"] == field
    assert (await client.get("/v1/services", headers=acme.headers)).json()["data"] == []


async def test_bad_pagination_parameters(client: Client, acme: Caller) -> None:
    response = await client.get("/v1/api-keys", params={"limit": "0"}, headers=acme.headers)
    assert response.status_code == 400
    assert problem(response)["field"] == "limit"
