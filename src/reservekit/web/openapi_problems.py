"""Every answer an operation can give, as the OpenAPI document declares it (issue 9).

Litestar documents only each route's success and its own ``{status_code, detail, extra}`` 400, which
is not what this API sends. ``responses_for`` lists, per operation, the problem+json errors of
docs/errors.md it can really answer — from what the route is (keyed or public, with a body, a path
id, a per-IP budget, a write) — each with an example, and the headers every answer carries:
``X-Request-Id`` always, the rate-limit headers after authentication, ``Retry-After`` on 429 and
503, ``WWW-Authenticate`` on 401. The fuzz suite (tests/fuzz) checks real answers against this.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
)

from reservekit.web.problems import PROBLEM_JSON, PROBLEM_TYPE_BASE

PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "title", "status", "code"],
    properties={
        "type": Schema(type=OpenAPIType.STRING, description="https://docs.reservekit.io/problems/ + code"),
        "title": Schema(type=OpenAPIType.STRING, description="fixed text per code, for people"),
        "status": Schema(type=OpenAPIType.INTEGER, description="the HTTP status, repeated"),
        "code": Schema(type=OpenAPIType.STRING, description="stable snake_case identifier: match on it"),
        "request_id": Schema(type=OpenAPIType.STRING, description="the X-Request-Id of this answer"),
        "detail": Schema(type=OpenAPIType.STRING, description="one sentence about this request"),
        "field": Schema(type=OpenAPIType.STRING, description="the offending field, parameter or header"),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.OBJECT),
            description="the decoder's {message, key, source} list",
        ),
    },
    description="RFC 9457 problem details (docs/errors.md)",
)

_INT = Schema(type=OpenAPIType.INTEGER)
_TEXT = Schema(type=OpenAPIType.STRING)
# One definition each under components/headers; responses refer to them.
HEADERS: dict[str, OpenAPIHeader] = {
    "X-Request-Id": OpenAPIHeader(
        schema=_TEXT, required=True, description="The request's id (sent, or made: req_ + 16 hex)"
    ),
    "X-RateLimit-Limit": OpenAPIHeader(schema=_INT, description="Requests per minute of the plan"),
    "X-RateLimit-Remaining": OpenAPIHeader(schema=_INT, description="Requests that can be sent now"),
    "X-RateLimit-Reset": OpenAPIHeader(schema=_INT, description="Unix second the bucket is full again"),
    "RateLimit-Policy": OpenAPIHeader(schema=_TEXT, description='IETF draft: "default";q=N;w=60'),
    "RateLimit": OpenAPIHeader(schema=_TEXT, description='IETF draft: "default";r=remaining;t=seconds'),
    "Retry-After": OpenAPIHeader(schema=_INT, required=True, description="Whole seconds to wait"),
    "WWW-Authenticate": OpenAPIHeader(schema=_TEXT, required=True, description='Bearer realm="reservekit"'),
    "Location": OpenAPIHeader(schema=_TEXT, required=True, description="Where the new resource is"),
    "Cache-Control": OpenAPIHeader(
        schema=_TEXT, required=True, description="no-store: the body holds a secret"
    ),
    "Idempotent-Replayed": OpenAPIHeader(
        schema=_TEXT, description="true when this is the stored answer to an earlier Idempotency-Key"
    ),
}
RATE_LIMIT_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "RateLimit-Policy",
    "RateLimit",
)


@dataclass(frozen=True)
class Kind:
    """What an operation is, which decides what it can answer."""

    method: str
    keyed: bool  # needs a key: 401, 403, the plan's 429, 503
    ip_budget: bool  # public, limited per client IP: 429
    database: bool  # public, reads or writes the database: 503
    body: bool  # takes a JSON body: 413, 415, 422
    path_id: bool  # names a resource in its path: 404
    conflicts: bool  # a concurrent change can win: 409
    secret_created: bool = False  # 201 with a secret: Location and Cache-Control


@dataclass(frozen=True)
class _Error:
    description: str
    code: str
    title: str
    detail: str | None = None
    field: str | None = None


_ERRORS: dict[str, _Error] = {
    "400": _Error(
        "A query or path parameter, an Idempotency-Key, or a body that is not JSON, not UTF-8, too deep "
        "or holds NUL; `field` names it",
        "invalid_request",
        "Invalid request",
        "unknown query parameter 'limt'",
        "limt",
    ),
    "401": _Error(
        "Missing, malformed, unknown, revoked or expired key (code says which)",
        "api_key_invalid",
        "API key is invalid",
    ),
    "403": _Error(
        "Origin not among the key's domains, or none of the scopes this operation accepts",
        "scope_denied",
        "API key does not have access to this endpoint",
    ),
    "404": _Error("No such resource, or another account's", "not_found", "Not found", "no such key", "id"),
    "409": _Error(
        "A concurrent change won, or a request with the same Idempotency-Key is still running",
        "conflict",
        "Conflict",
        "a concurrent change won; nothing was written",
    ),
    "413": _Error(
        "Body larger than RESERVEKIT_MAX_BODY_BYTES", "request_too_large", "Request Entity Too Large"
    ),
    "415": _Error(
        "A body sent with a Content-Type other than application/json",
        "unsupported_media_type",
        "Unsupported Media Type",
    ),
    "422": _Error(
        "The JSON body does not fit (wrong type, unknown or missing field, out of range) or is not "
        "acceptable; or an Idempotency-Key reused with another request. `field` names it",
        "invalid_input",
        "Invalid input",
        "Expected `int`, got `str` - at `$.grace_period_seconds`",
        "grace_period_seconds",
    ),
    "429": _Error(
        "The plan's quota (or the client IP's budget) is spent; wait Retry-After seconds",
        "rate_limited",
        "Rate limit exceeded",
    ),
    "503": _Error(
        "The database cannot be reached; nothing was written",
        "database_unavailable",
        "Service unavailable",
        "the database cannot be reached; nothing was written",
    ),
}


def statuses_for(kind: Kind) -> list[str]:
    """The error statuses an operation of this kind can answer, in order."""
    wanted = ["400"]
    if kind.keyed:
        wanted += ["401", "403"]
    if kind.path_id:
        wanted.append("404")
    if kind.conflicts:
        wanted.append("409")
    if kind.body:
        wanted += ["413", "415"]
    if kind.body or kind.method == "POST":  # a POST's Idempotency-Key reused with another request
        wanted.append("422")
    if kind.keyed or kind.ip_budget:
        wanted.append("429")
    if kind.keyed or kind.database:
        wanted.append("503")
    return wanted


def _ref(name: str) -> Reference:
    return Reference(ref=f"#/components/headers/{name}")


def problem_response(status: str, kind: Kind) -> OpenAPIResponse:
    error = _ERRORS[status]
    example = {
        "type": PROBLEM_TYPE_BASE + error.code,
        "title": error.title,
        "status": int(status),
        "code": error.code,
        "request_id": "req_a89b4569c202ade4",
    }
    if error.detail:
        example["detail"] = error.detail
    if error.field:
        example["field"] = error.field
    return OpenAPIResponse(
        description=error.description,
        content={
            PROBLEM_JSON: OpenAPIMediaType(
                schema=Reference(ref="#/components/schemas/Problem"), example=example
            )
        },
        headers=headers_for(status, kind),
    )


def headers_for(status: str, kind: Kind) -> dict[str, OpenAPIHeader | Reference]:
    names = ["X-Request-Id"]
    if kind.keyed or (kind.ip_budget and status == "429"):
        names += RATE_LIMIT_HEADERS
    if status in ("429", "503"):
        names.append("Retry-After")
    if status == "401":
        names.append("WWW-Authenticate")
    if status == "201" and kind.secret_created:
        names += ["Location", "Cache-Control"]
    if status.startswith("2") and kind.method == "POST":
        names.append("Idempotent-Replayed")
    return {name: _ref(name) for name in names}
