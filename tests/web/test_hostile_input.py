"""Inputs from the fuzzing report (issue 10, F1 to F4): every one is a 4xx problem on both backends, never a
500, and writes nothing."""

from __future__ import annotations

import pytest

from reservekit.runtime import Runtime
from reservekit.web.pagination import Listing, encode_cursor
from tests.web.conftest import Caller, Client, event_count, problem

DEEP_JSON = b"[" * 1000 + b"]" * 1000
DEEP_OBJECT = b'{"name":' + b"[" * 1000 + b"]" * 1000 + b"}"
BAD_UTF8 = b'{"key":"a\xffb"}'
BAD_UTF8_NAME = b'{"name":"a\xffb"}'

JSON_ROUTES = [
    ("POST", "/v1/leaks"),
    ("POST", "/v1/api-keys"),
    ("POST", "/v1/services"),
    ("POST", "/v1/accounts"),
]


def assert_problem(response: object, status: int | tuple[int, ...], field: str | None = None) -> None:
    code = response.status_code  # type: ignore[attr-defined]
    allowed = status if isinstance(status, tuple) else (status,)
    assert code in allowed, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    if field is not None:
        assert problem(response)["field"] == field


@pytest.mark.parametrize("body", [DEEP_JSON, DEEP_OBJECT, BAD_UTF8, BAD_UTF8_NAME, b"\xff\xfe", b"{"])
@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
async def test_undecodable_bodies_are_4xx_on_every_json_route(
    client: Client, operator: Caller, runtime: Runtime, method: str, path: str, body: bytes
) -> None:
    before = await event_count(runtime)
    response = await client.request(
        method, path, content=body, headers=operator.headers | {"Content-Type": "application/json"}
    )
    # Too deep to fit any body of this API: either refused as not fitting (422, the strict decode meets
    # the wrong type first) or as too deep (400); never a 5xx, never a write.
    assert_problem(response, (400, 422) if body in (DEEP_JSON, DEEP_OBJECT) else 400)
    assert await event_count(runtime) == before


async def test_leak_reports_are_limited_per_ip_before_the_body_is_decoded(client: Client) -> None:
    answers = [
        (await client.post("/v1/leaks", content=DEEP_JSON, headers={"Content-Type": "application/json"}))
        for _ in range(12)
    ]
    statuses = [a.status_code for a in answers]
    assert statuses[:10] == [422] * 10  # read and refused (an array is not a report) while in budget
    assert statuses[10:] == [429, 429]
    assert "retry-after" in answers[-1].headers


NUL_PATHS = [
    "/v1/services/%00",
    "/v1/services/svc_%00x",
    "/v1/api-keys/key_%00",
    "/v1/api-keys/key_%00/usage",
    "/v1/audit/flags/flg_%00",
    "/v1/accounts/acct_%00",
    "/v1/audit/events?stream_id=%00",
    "/v1/audit/events?account_id=a%00",
    "/v1/audit/events?type=%00",
    "/v1/audit/events?actor=%00",
    "/v1/audit/usage?key_id=%00",
    "/v1/audit/usage?outcome=%00",
    "/v1/audit/usage?client_ip=%00",
    "/v1/audit/flags?key_id=%00",
    "/v1/audit/flags?account_id=%00",
    "/v1/audit/flags?cursor=%00",
    "/v1/api-keys?cursor=key_%00",
    "/v1/services?cursor=%00",
    "/v1/audit/keys?as_of=2026-01-01T00:00:00Z&account_id=%00",
]


@pytest.mark.parametrize("path", NUL_PATHS)
async def test_a_nul_character_in_a_path_id_or_query_filter_is_400(
    client: Client, operator: Caller, path: str
) -> None:
    response = await client.get(path, headers=operator.headers)
    assert_problem(response, 400)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/services", {"name": "a\x00b", "duration_minutes": 30}, "name"),
        ("/v1/services", {"name": "ok", "duration_minutes": 30, "description": "x\x00"}, "description"),
        ("/v1/api-keys", {"name": "a\x00b"}, "name"),
        ("/v1/api-keys", {"domains": ["a\x00.example.com"]}, "domains"),
        ("/v1/accounts", {"name": "a\x00b"}, "name"),
        ("/v1/leaks", {"key": "sk_rsv_\x00", "source": "a\x00"}, "source"),
    ],
)
async def test_a_nul_character_in_a_body_field_is_400_naming_it(
    client: Client, operator: Caller, runtime: Runtime, path: str, body: dict[str, object], field: str
) -> None:
    before = await event_count(runtime)
    response = await client.post(path, json=body, headers=operator.headers)
    assert_problem(response, 400, field)
    assert await event_count(runtime) == before


async def test_a_nul_character_in_a_service_patch_and_revoke_reason_is_400(
    client: Client, operator: Caller, runtime: Runtime
) -> None:
    created = await client.post(
        "/v1/services", json={"name": "Cut", "duration_minutes": 30}, headers=operator.headers
    )
    assert created.status_code == 201, created.text
    service = created.json()["id"]
    patched = await client.patch(f"/v1/services/{service}", json={"name": "\x00"}, headers=operator.headers)
    assert_problem(patched, 400, "name")
    before = await event_count(runtime)
    revoked = await client.post(
        f"/v1/api-keys/{operator.key_id}/revoke", json={"reason": "x\x00"}, headers=operator.headers
    )
    assert_problem(revoked, 400, "reason")
    assert await event_count(runtime) == before


@pytest.mark.parametrize("value", [[2**63, "flg_x"], [-1, "flg_x"], [1, "key_x"], [1, "flg_\x00"]])
async def test_a_flag_cursor_that_is_not_ours_is_400(client: Client, operator: Caller, value: object) -> None:
    cursor = encode_cursor("flags", value)  # type: ignore[arg-type]
    response = await client.get("/v1/audit/flags", params={"cursor": cursor}, headers=operator.headers)
    assert_problem(response, 400, "cursor")


@pytest.mark.parametrize(
    ("route", "listing"), [("/v1/audit/usage", "audit_usage"), ("/v1/audit/events", "audit_events")]
)
@pytest.mark.parametrize("position", [10**20, 2**63, -1])
async def test_a_cursor_beyond_64_bits_is_400(
    client: Client, operator: Caller, route: str, listing: Listing, position: int
) -> None:
    cursor = encode_cursor(listing, position)
    response = await client.get(route, params={"cursor": cursor}, headers=operator.headers)
    assert_problem(response, 400, "cursor")


async def test_the_largest_64_bit_cursor_is_an_empty_page(client: Client, operator: Caller) -> None:
    cursor = encode_cursor("audit_events", 2**63 - 1)
    response = await client.get("/v1/audit/events", params={"cursor": cursor}, headers=operator.headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


OUT_OF_RANGE = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
@pytest.mark.parametrize(
    ("template", "field"),
    [
        ("/v1/audit/keys?as_of={}", "as_of"),
        ("/v1/audit/events?until={}", "until"),
        ("/v1/audit/events?since={}", "since"),
        ("/v1/audit/usage?until={}", "until"),
        ("/v1/audit/flags?until={}", "until"),
        ("/v1/audit/flags?since={}", "since"),
        ("/v1/api-keys/{{key}}/usage?until={}", "until"),
        ("/v1/api-keys/{{key}}/usage?since={}", "since"),
    ],
)
async def test_an_instant_outside_the_utc_calendar_is_400(
    client: Client, operator: Caller, template: str, field: str, moment: str
) -> None:
    path = template.format(moment.replace("+", "%2B")).replace("{key}", operator.key_id)
    response = await client.get(path, headers=operator.headers)
    assert_problem(response, 400, field)


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
async def test_an_expiry_outside_the_utc_calendar_is_4xx(
    client: Client, operator: Caller, runtime: Runtime, moment: str
) -> None:
    before = await event_count(runtime)
    response = await client.post("/v1/api-keys", json={"expires_at": moment}, headers=operator.headers)
    assert_problem(response, (400, 422), "expires_at")
    assert await event_count(runtime) == before
