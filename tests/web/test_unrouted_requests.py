"""Requests no route answers still name their request; 405 says what is allowed; HEAD /healthz works."""

from __future__ import annotations

from tests.web.conftest import Client, problem


async def test_an_unknown_path_is_a_problem_with_a_request_id(client: Client) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    body = problem(response)
    assert body["code"] == "not_found"
    assert str(body["request_id"]).startswith("req_")
    assert response.headers["x-request-id"] == body["request_id"]
    echoed = await client.get("/v1/nothing-here", headers={"X-Request-Id": "trace-42"})
    assert echoed.headers["x-request-id"] == "trace-42"
    assert problem(echoed)["request_id"] == "trace-42"


async def test_a_wrong_method_names_the_allowed_ones(client: Client) -> None:
    response = await client.delete("/healthz")
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
    assert response.headers["x-request-id"] == problem(response)["request_id"]


async def test_head_healthz_answers_without_a_body(client: Client) -> None:
    response = await client.head("/healthz")
    assert response.status_code == 200
    assert response.content == b""


async def test_routed_responses_carry_exactly_one_request_id(client: Client) -> None:
    response = await client.get("/v1/services")  # refused by the middleware: no key
    assert response.headers.get_list("x-request-id") == [problem(response)["request_id"]]


async def test_metrics_have_one_content_type(client: Client) -> None:
    response = await client.get("/metrics")
    assert response.headers.get_list("content-type") == ["text/plain; version=0.0.4; charset=utf-8"]
