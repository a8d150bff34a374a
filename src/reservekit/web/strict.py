"""Input is what the document says, exactly: strict JSON types, JSON only as JSON, no unknown parameters.

Litestar converts bodies and parameters leniently (``"10"`` becomes ``10``) because query strings are
text. A body is JSON, so its types must already be right: it is decoded here, strictly, before the
handler runs, and any difference (wrong type, unknown or missing field, out of range) is a 422
``invalid_input`` naming the field, with msgspec's message and its path as the detail (problems.py).
A query parameter that no route declares is refused rather than ignored, so a typo (``?limt=5``) is not
silently a default.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler

from reservekit.web.problems import InvalidParameter

_NOT_QUERY = frozenset({"data", "call", "ops", "request", "scope", "headers", "state", "socket"})
_WITH_BODY = frozenset({"POST", "PATCH", "PUT"})


@cache
def _declared(handler: HTTPRouteHandler) -> tuple[frozenset[str], Any]:
    """The query names a handler declares (with its path parameters) and its body type, if any."""
    parameters = handler.parsed_fn_signature.parameters
    body = parameters["data"].annotation if "data" in parameters else None
    return frozenset(parameters) - _NOT_QUERY, body


async def check_request(request: Request[Any, Any, Any]) -> None:
    if not request.scope.get("query_string") and request.scope["method"] not in _WITH_BODY:
        return  # nothing to check (most GETs): no query to parse, no body to decode
    handler = request.route_handler
    if handler.opt.get("public") and request.url.path.startswith("/schema"):
        return
    declared, body_type = _declared(handler)
    unknown = sorted(set(request.query_params) - declared - set(request.path_params))
    if unknown:
        raise InvalidParameter(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    if body_type is None or request.method not in _WITH_BODY:
        return
    body = await request.body()
    if not body:
        return
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(status_code=415, detail="Unsupported Media Type")
    try:
        body.decode("utf-8")  # not UTF-8 is not JSON at all: the body guard's 400, before any field check
        msgspec.json.decode(body, type=body_type, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationException(
            detail="Invalid request body", extra=[{"message": str(exc), "source": "body"}]
        ) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        return  # not JSON (or not UTF-8) at all: the body guard's own decoding answers that, as before
