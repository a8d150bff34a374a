"""Document every error answer in the OpenAPI document, so it matches what the API sends.

Litestar documents only each route's success and its validation 400 (as ``application/json``). Every
route can also answer the problem+json errors of docs/errors.md; the fuzz suite checks responses
against this document, so they are added here once for all operations, after the app is built.
"""

from __future__ import annotations

from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)

PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "title", "status", "code"],
    properties={
        "type": Schema(type=OpenAPIType.STRING),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "code": Schema(type=OpenAPIType.STRING),
        "request_id": Schema(type=OpenAPIType.STRING),
        "detail": Schema(type=OpenAPIType.STRING),
        "field": Schema(type=OpenAPIType.STRING),
        "errors": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)),
    },
    description="RFC 9457 problem details (docs/errors.md)",
)
_RETRY_AFTER: dict[str, OpenAPIHeader | Reference] = {
    "Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER))
}
# Any route: bad parameters or body, body too large, over a budget, database away.
_EVERY_ROUTE = {
    "400": "The request does not fit: parameter, body, encoding or NUL character; `field` names it",
    "404": "No such resource (or another account's)",
    "405": "Method not allowed",
    "413": "Body larger than RESERVEKIT_MAX_BODY_BYTES",
    "415": "Unsupported media type",
    "429": "Rate limit exceeded",
    "503": "The database cannot be reached; nothing was written",
}
_KEYED_ROUTE = {
    "401": "Missing, malformed, unknown, revoked or expired key",
    "403": "Origin or scope refused",
    "409": "A concurrent change won, or the key cannot change any more",
    "422": "Well typed but not acceptable",
}


def document_problems(openapi: OpenAPI) -> None:
    components = openapi.components
    if components is not None:
        components.schemas = {**(components.schemas or {}), "Problem": PROBLEM_SCHEMA}
    reference = Reference(ref="#/components/schemas/Problem")
    for path, item in (openapi.paths or {}).items():
        if path.startswith("/schema"):
            continue
        for operation in (item.get, item.post, item.put, item.patch, item.delete):
            if operation is not None:
                _add_problems(operation, reference, keyed=not _is_public(path))


def _is_public(path: str) -> bool:
    return path in ("/healthz", "/readyz", "/metrics", "/v1/leaks")


def _add_problems(operation: Operation, reference: Reference, *, keyed: bool) -> None:
    responses = dict(operation.responses or {})
    wanted = {**_EVERY_ROUTE, **(_KEYED_ROUTE if keyed else {})}
    for status, description in wanted.items():
        existing = responses.get(status)
        media = OpenAPIMediaType(schema=reference)
        if isinstance(existing, OpenAPIResponse):
            # Litestar's own 400 says application/json; ours are problem+json.
            existing.content = {**(existing.content or {}), "application/problem+json": media}
            continue
        responses[status] = OpenAPIResponse(
            description=description,
            content={"application/problem+json": media},
            headers=_RETRY_AFTER if status in ("429", "503") else None,
        )
    operation.responses = responses
