"""The OpenAPI document tells the truth (issue 9): every route, per-operation security and scopes, every
error with its problem+json example and headers, optional bodies, plain names, an offline docs page.
(Whether real answers match it is the fuzz suite's job: tests/fuzz.)"""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar
from litestar.routes import ASGIRoute, HTTPRoute

from reservekit.web.openapi_document import plain_name
from tests.web.conftest import Client

PUBLIC = {
    ("GET", "/healthz"),
    ("HEAD", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/v1/leaks"),
}
NOT_OPERATIONS = ("/schema", "/dashboard")  # the document itself and its UI; the browser pages


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


async def _document(client: Client) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_every_route_of_the_app_is_in_the_document(app: Litestar) -> None:
    document = app.openapi_schema.to_schema()
    for route in app.routes:
        if route.path.startswith(NOT_OPERATIONS):
            continue
        assert isinstance(route, HTTPRoute | ASGIRoute)
        assert route.path_format in document["paths"], route.path
    assert "post" in document["paths"]["/v1/keys/verify"]  # the raw ASGI route, described by hand
    assert not any(path.startswith(NOT_OPERATIONS) for path in document["paths"])


async def test_security_is_per_operation_with_the_scope_it_needs(client: Client, app: Litestar) -> None:
    document = await _document(client)
    assert "security" not in document
    scopes_of = {
        (method, route.path_format): sorted(handler.opt.get("scopes") or ())
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        for method in handler.http_methods
    }
    for (method, path), operation in _operations(document).items():
        if (method, path) in PUBLIC:
            assert operation["security"] == [], (method, path)
            assert "x-required-scopes" not in operation
            assert "401" not in operation["responses"]
            continue
        assert operation["security"] == [{"bearer": []}], (method, path)
        wanted = ["keys:verify"] if path == "/v1/keys/verify" else scopes_of[(method, path)]
        assert operation["x-required-scopes"] == wanted, (method, path)
        assert all(f"`{scope}`" in operation["description"] for scope in wanted)
        assert {"401", "403", "429", "503"} <= set(operation["responses"]), (method, path)


async def test_every_error_is_problem_json_with_an_example_and_a_request_id(client: Client) -> None:
    document = await _document(client)
    headers = document["components"]["headers"]
    assert headers["X-Request-Id"]["required"] is True
    for (method, path), operation in _operations(document).items():
        for status, response in operation["responses"].items():
            assert response["headers"]["X-Request-Id"] == {"$ref": "#/components/headers/X-Request-Id"}
            if int(status) < 400 or path == "/readyz":
                continue
            media = response["content"]
            assert list(media) == ["application/problem+json"], (method, path, status)
            example = media["application/problem+json"]["example"]
            assert example["status"] == int(status)
            assert example["type"].endswith(example["code"])
            if status in ("429", "503"):
                assert "Retry-After" in response["headers"]
            if status == "401":
                assert "WWW-Authenticate" in response["headers"]
        has_body = "requestBody" in operation
        assert ("415" in operation["responses"]) == has_body, (method, path)
        assert ("404" in operation["responses"]) == ("{" in path), (method, path)


async def test_the_rate_limit_headers_and_the_secret_headers_are_declared(client: Client) -> None:
    operations = _operations(await _document(client))
    created = operations[("POST", "/v1/api-keys")]["responses"]["201"]["headers"]
    assert {"X-RateLimit-Remaining", "RateLimit", "Location", "Cache-Control", "Idempotent-Replayed"} <= set(
        created
    )
    for secret in [
        ("POST", "/v1/accounts"),
        ("POST", "/v1/api-keys/{key_id}/rotate"),
        ("POST", "/v1/webhook-endpoints"),
    ]:
        assert {"Location", "Cache-Control"} <= set(operations[secret]["responses"]["201"]["headers"])
    assert "Location" not in operations[("POST", "/v1/services")]["responses"]["201"]["headers"]  # no secret
    assert "X-RateLimit-Remaining" not in operations[("GET", "/healthz")]["responses"]["200"]["headers"]
    assert set(operations[("GET", "/readyz")]["responses"]) == {"200", "400", "503"}


async def test_an_optional_body_is_optional(client: Client) -> None:
    operations = _operations(await _document(client))
    assert operations[("POST", "/v1/api-keys")]["requestBody"]["required"] is False
    assert operations[("POST", "/v1/api-keys/{key_id}/rotate")]["requestBody"]["required"] is False
    assert operations[("POST", "/v1/services")]["requestBody"]["required"] is True
    assert operations[("POST", "/v1/keys/verify")]["requestBody"]["required"] is True


async def test_schema_names_are_plain_and_every_reference_resolves(client: Client) -> None:
    document = await _document(client)
    names = set(document["components"]["schemas"])
    assert all(re.fullmatch(r"[A-Z][A-Za-z0-9]*", name) for name in names), sorted(names)
    assert {"ServicePage", "KeyOutPage", "VerifyBody", "VerifyAnswer", "Problem"} <= names
    references = set(re.findall(r'"#/components/schemas/([^"]+)"', str(document).replace("'", '"')))
    assert references <= names


def test_plain_names() -> None:
    assert plain_name("Page_reservekit.scheduling.Service_") == "ServicePage"
    assert plain_name("reservekit.webhooks.deliveries.EndpointOut") == "EndpointOut"
    assert plain_name("KeyOut") == "KeyOut"


async def test_the_docs_page_loads_nothing_from_another_host(client: Client) -> None:
    page = await client.get("/schema/swagger")
    assert page.status_code == 200
    html = page.text
    assert "://" not in html, "an absolute URL in the docs page"
    assert "//" not in html.replace("</", ""), "a scheme-relative URL in the docs page"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {"static/swagger-ui-bundle.js", "static/swagger-ui.css"} <= set(assets)
    for asset in assets:
        served = await client.get(f"/schema/{asset}")
        assert served.status_code == 200, asset
        assert len(served.content) > 0
    assert "validatorUrl: null" in html  # the online validator would call out
