"""Input is taken exactly as the document says (issue 9): no coercion, JSON only as JSON, no stray params."""

from __future__ import annotations

import pytest

from reservekit.runtime import Runtime
from tests.web.conftest import Caller, Client, event_count, problem


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/api-keys/{key}/rotate", {"grace_period_seconds": "10"}, "grace_period_seconds"),
        ("/v1/services", {"name": "Cut", "duration_minutes": "30"}, "duration_minutes"),
        ("/v1/api-keys", {"name": "ci", "scopes": "keys:read"}, "scopes"),
    ],
)
async def test_a_json_value_of_the_wrong_type_is_refused_and_writes_nothing(
    client: Client, runtime: Runtime, acme: Caller, path: str, body: dict[str, object], field: str
) -> None:
    written = await event_count(runtime)
    response = await client.post(path.format(key=acme.key_id), json=body, headers=acme.headers)
    assert response.status_code == 422
    assert problem(response)["code"] == "invalid_input"
    assert problem(response)["field"] == field
    assert f"at `$.{field}`" in str(problem(response)["detail"])  # the path, in the detail
    assert await event_count(runtime) == written
    listed = await client.get("/v1/services", headers=acme.headers)
    assert listed.json()["data"] == []


async def test_a_body_that_is_not_sent_as_json_is_415(client: Client, acme: Caller) -> None:
    response = await client.post(
        "/v1/services",
        content=b'{"name": "Cut", "duration_minutes": 30}',
        headers={**acme.headers, "Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert problem(response)["code"] == "unsupported_media_type"
    assert (await client.get("/v1/services", headers=acme.headers)).json()["data"] == []


@pytest.mark.parametrize("name", ["   ", "tab\there", "bell\x07"])
async def test_blank_or_control_character_names_are_422(client: Client, acme: Caller, name: str) -> None:
    response = await client.post("/v1/api-keys", json={"name": name}, headers=acme.headers)
    assert response.status_code == 422
    assert problem(response)["field"] == "name"


async def test_an_unknown_query_parameter_is_400_naming_it(client: Client, acme: Caller) -> None:
    response = await client.get("/v1/api-keys", params={"limt": "5"}, headers=acme.headers)
    assert response.status_code == 400
    assert problem(response)["field"] == "limt"
    assert (await client.get("/v1/api-keys", params={"limit": "5"}, headers=acme.headers)).status_code == 200


async def test_a_nested_wrong_type_names_its_path(client: Client, acme: Caller) -> None:
    response = await client.post("/v1/api-keys", json={"scopes": ["keys:read", 7]}, headers=acme.headers)
    assert response.status_code == 422
    assert problem(response)["field"] == "scopes[1]"
    assert "$.scopes[1]" in str(problem(response)["detail"])


async def test_verify_refuses_a_wrong_type_with_422_and_a_non_json_body_with_415(
    client: Client, runtime: Runtime
) -> None:
    from tests.web.conftest import make_account

    operator = await make_account(runtime, "Ops", operator=True)
    wrong = await client.post("/v1/keys/verify", json={"cost": "2"}, headers=operator.headers)
    assert wrong.status_code == 422
    assert (problem(wrong)["code"], problem(wrong)["field"]) == ("invalid_input", "cost")
    text = await client.post(
        "/v1/keys/verify", content=b"{}", headers={**operator.headers, "Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    assert problem(text)["code"] == "unsupported_media_type"
