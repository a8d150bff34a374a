"""Make the OpenAPI document Litestar builds tell the truth (issue 9), once, after the app is built.

- Security per operation: none on public routes, the bearer key on the rest, and the scopes the route
  accepts (``web/access.py``) as ``x-required-scopes`` and in the description.
- Every answer each operation can give, with headers (``openapi_problems.py``).
- A request body with a default (``POST /v1/api-keys``) is optional.
- ``POST /v1/keys/verify``, a raw ASGI route Litestar cannot describe, is added by hand.
- Component names are plain names (``ServicePage``, not ``Page_reservekit.scheduling.Service_``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, cast

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    PathItem,
    Reference,
    RequestBody,
    Schema,
)
from litestar.routes import HTTPRoute

from reservekit.auth.verification import VerifyAnswer, VerifyBody
from reservekit.domain.scopes import KEYS_VERIFY
from reservekit.web.openapi_problems import (
    HEADERS,
    PROBLEM_SCHEMA,
    Kind,
    headers_for,
    problem_response,
    statuses_for,
)

BEARER = "bearer"
VERIFY_PATH = "/v1/keys/verify"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Writes that cannot meet a concurrent change: services are plain rows, not event streams, and a
# PATCH or DELETE takes no Idempotency-Key.
_WITHOUT_CONFLICTS = frozenset(
    {("PATCH", "/v1/services/{service_id}"), ("DELETE", "/v1/services/{service_id}")}
)


@dataclass
class ScopedOperation(Operation):
    """An operation with the ``x-required-scopes`` extension (Litestar's has no extension fields)."""

    required_scopes: list[str] | None = field(default=None, metadata={"alias": "x-required-scopes"})


@dataclass(frozen=True)
class RouteFacts:
    method: str
    path: str
    opt: dict[str, Any]
    has_body: bool
    body_optional: bool

    @property
    def public(self) -> bool:
        return bool(self.opt.get("public"))

    @property
    def scopes(self) -> list[str]:
        return sorted(self.opt.get("scopes") or ())

    def kind(self, success: str, *, secret: bool = False) -> Kind:
        return Kind(
            method=self.method,
            keyed=not self.public,
            ip_budget=bool(self.opt.get("per_ip_per_minute")),
            database=self.public and self.method == "POST",  # a leak report writes; probes do not
            body=self.has_body,
            path_id="{" in self.path,
            conflicts=self.method == "POST"
            or (self.method in ("PATCH", "DELETE") and (self.method, self.path) not in _WITHOUT_CONFLICTS),
            secret_created=secret and success == "201",
        )


def route_facts(app: Litestar) -> dict[tuple[str, str], RouteFacts]:
    """Every documented (method, path) of the app with what its handler says about it."""
    found: dict[tuple[str, str], RouteFacts] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not isinstance(handler, HTTPRouteHandler) or not handler.resolve_include_in_schema():
                continue
            data = handler.parsed_fn_signature.parameters.get("data")
            for method in handler.http_methods:
                if method == "OPTIONS":
                    continue
                found[(method, route.path_format)] = RouteFacts(
                    method=method,
                    path=route.path_format,
                    opt=dict(handler.opt),
                    has_body=data is not None,
                    body_optional=data is not None and data.has_default,
                )
    return found


def shape_document(app: Litestar) -> OpenAPI:
    openapi = app.openapi_schema
    openapi.security = None  # per operation instead: public routes need no key
    components = openapi.components or Components()
    openapi.components = components
    components.schemas = {**(components.schemas or {}), "Problem": PROBLEM_SCHEMA}
    components.headers = {**(components.headers or {}), **HEADERS}
    facts = route_facts(app)
    paths = openapi.paths or {}
    for path, item in paths.items():
        for method in _METHODS:
            operation = getattr(item, method)
            known = facts.get((method.upper(), path))
            if operation is None or known is None:
                continue
            setattr(item, method, _truthful(operation, known, components))
    _readiness_unavailable(paths.get("/readyz"))
    _add_verify(openapi)
    _rename_components(openapi)
    return openapi


def _carries_secret(components: Components, response: object) -> bool:
    """Does this answer hold a ``secret`` (itself, or one level down: an account with its first key)?"""
    if not isinstance(response, OpenAPIResponse):
        return False
    schemas = components.schemas or {}

    def has_secret(node: object, depth: int) -> bool:
        if isinstance(node, Reference):
            node = schemas.get(node.ref.rsplit("/", 1)[-1])
        if not isinstance(node, Schema) or depth > 1:
            return False
        properties = node.properties or {}
        return "secret" in properties or any(has_secret(child, depth + 1) for child in properties.values())

    return any(has_secret(media.schema, 0) for media in (response.content or {}).values())


def _truthful(operation: Operation, facts: RouteFacts, components: Components) -> ScopedOperation:
    values = {f.name: getattr(operation, f.name) for f in fields(Operation)}
    shaped = ScopedOperation(**values)
    if facts.public:
        shaped.security = []
    else:
        shaped.security = [{BEARER: []}]
        shaped.required_scopes = facts.scopes
        accepted = " or ".join(f"`{scope}`" for scope in facts.scopes)
        needs = f"Needs a key with scope {accepted}." if accepted else "Needs a key."
        shaped.description = f"{shaped.description}\n\n{needs}" if shaped.description else needs
    if isinstance(shaped.request_body, RequestBody) and facts.body_optional:
        shaped.request_body.required = False
    responses = dict(shaped.responses or {})
    success = next((status for status in responses if status.startswith("2")), "200")
    kind = facts.kind(success, secret=_carries_secret(components, responses.get(success)))
    for status, response in responses.items():
        if status.startswith("2") and isinstance(response, OpenAPIResponse):
            response.headers = {**(response.headers or {}), **headers_for(status, kind)}
    for status in statuses_for(kind):
        # Replaces Litestar's own 400, whose {status_code, detail, extra} body this API never sends.
        responses[status] = problem_response(status, kind)
    shaped.responses = responses
    return shaped


def _readiness_unavailable(item: PathItem | None) -> None:
    """``/readyz`` answers 503 with its own Readiness body, not a problem (docs/operations.md)."""
    operation = item.get if item else None
    ok = (operation.responses or {}).get("200") if operation else None
    if operation is None or not isinstance(ok, OpenAPIResponse):
        return
    operation.responses = {
        **(operation.responses or {}),
        "503": OpenAPIResponse(
            description="Not ready: the database is away, or projections or the key view lag the log",
            content=ok.content,
            headers=ok.headers,
        ),
    }


def _add_verify(openapi: OpenAPI) -> None:
    """``POST /v1/keys/verify`` is raw ASGI (for speed, web/verify.py): described here by hand."""
    _, definitions = msgspec.json.schema_components(
        [VerifyBody, VerifyAnswer], ref_template="#/components/schemas/{name}"
    )
    components = openapi.components or Components()
    # msgspec writes JSON Schema 2020-12, which OpenAPI 3.1 uses as is.
    components.schemas = {**(components.schemas or {}), **cast(dict[str, Schema], definitions)}
    kind = Kind(
        method="POST", keyed=True, ip_budget=False, database=False, body=True, path_id=False, conflicts=False
    )
    ok = OpenAPIResponse(
        description="The outcome for the presented key (SPEC §4): valid, or the refusal this API would give",
        content={
            "application/json": OpenAPIMediaType(schema=Reference(ref="#/components/schemas/VerifyAnswer"))
        },
        # A question, not a write: never replayed, so no Idempotent-Replayed (web/verify.py).
        headers={k: v for k, v in headers_for("200", kind).items() if k != "Idempotent-Replayed"},
    )
    operation = ScopedOperation(
        tags=["keys"],
        summary="Verify a key another service was presented (outcome, scopes, quota, log position)",
        description=(
            "An operator's service key may verify any account's keys; any other only its own account's "
            "(another account's key is answered like an unknown key). See docs/verify.md.\n\n"
            f"Needs a key with scope `{KEYS_VERIFY}`."
        ),
        operation_id="V1KeysVerify",
        request_body=RequestBody(
            content={
                "application/json": OpenAPIMediaType(schema=Reference(ref="#/components/schemas/VerifyBody"))
            },
            required=True,
        ),
        responses={"200": ok, **{status: problem_response(status, kind) for status in statuses_for(kind)}},
        security=[{BEARER: []}],
        required_scopes=[KEYS_VERIFY],
    )
    openapi.paths = {**(openapi.paths or {}), VERIFY_PATH: PathItem(post=operation)}


_GENERIC = re.compile(r"^(\w+)_([\w.]+)_$")


def plain_name(name: str) -> str:
    """``Page_reservekit.scheduling.Service_`` → ``ServicePage``; ``a.b.Thing`` → ``Thing``."""
    generic = _GENERIC.match(name)
    if generic and "." in generic.group(2):
        return generic.group(2).rsplit(".", 1)[-1] + generic.group(1)
    return name.rsplit(".", 1)[-1]


def _rename_components(openapi: OpenAPI) -> None:
    components = openapi.components
    if components is None or not components.schemas:
        return
    renamed = {name: plain_name(name) for name in components.schemas}
    if len(set(renamed.values())) != len(renamed):
        raise RuntimeError(f"two schemas would share a name: {sorted(renamed.items())}")
    schemas: dict[str, Schema | Reference] = {}
    for old, schema in components.schemas.items():
        new = renamed[old]
        if new != old and isinstance(schema, Schema):
            schema.title = new
        schemas[new] = schema
    components.schemas = cast(dict[str, Schema], schemas)
    prefix = "#/components/schemas/"
    targets = {prefix + old: prefix + new for old, new in renamed.items() if old != new}
    _rewrite_references(openapi, targets, seen=set())


def _rewrite_references(node: object, targets: dict[str, str], seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, Reference):
        node.ref = targets.get(node.ref, node.ref)
    elif isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            node["$ref"] = targets.get(node["$ref"], node["$ref"])
        for value in node.values():
            _rewrite_references(value, targets, seen)
    elif isinstance(node, list | tuple):
        for value in node:
            _rewrite_references(value, targets, seen)
    elif hasattr(node, "__dataclass_fields__"):
        for name in node.__dataclass_fields__:
            _rewrite_references(getattr(node, name), targets, seen)
