"""RFC 9457 problem details: every error body the API sends is built here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from reservekit.db import DatabaseUnavailable, is_unavailable
from reservekit.domain.errors import Conflict, DomainError, InvalidInput, NotFound, NotPermitted
from reservekit.web.request_ids import request_id_for

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://docs.reservekit.io/problems/"
log = structlog.get_logger(__name__)


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    code: str
    request_id: str | None = None
    detail: str | None = None
    field: str | None = None
    errors: list[dict[str, Any]] | None = None


_encoder = msgspec.json.Encoder()


def problem_bytes(status: int, title: str, code: str, request_id: str | None, **extra: Any) -> bytes:
    return _encoder.encode(
        Problem(
            type=PROBLEM_TYPE_BASE + code,
            title=title,
            status=status,
            code=code,
            request_id=request_id,
            **extra,
        )
    )


def request_id_of(request: Request[Any, Any, Any]) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value else None


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    title: str,
    code: str,
    *,
    request_id: str | None = None,
    **extra: Any,
) -> Response[bytes]:
    return Response(
        content=problem_bytes(status, title, code, request_id or request_id_of(request), **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
    )


_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `([^`]+)`")
_AT_PATH = re.compile(r"at `\$\.([^`]+)`")


def _validation_field(extra: Any) -> tuple[str | None, list[dict[str, Any]] | None]:
    """Name the offending field, also when msgspec reports it only inside the message."""
    if not (isinstance(extra, list) and extra):
        return None, None
    errors = [e for e in extra if isinstance(e, dict)]
    first = errors[0] if errors else {}
    message = str(first.get("message", ""))
    named = _NAMED_FIELD.search(message) or _AT_PATH.search(message)
    key = named.group(1) if named else first.get("key")
    return (str(key) if key else None), errors or None


class ProblemKind(msgspec.Struct, frozen=True):
    status: int
    title: str
    code: str


class InvalidParameter(DomainError):
    """A query or path parameter that does not fit (raised by ``web/params.py``, never by the domain)."""


INVALID_REQUEST = ProblemKind(400, "Invalid request", "invalid_request")
INVALID_BODY = ProblemKind(422, "Invalid input", "invalid_input")

# The one table from a refused decision to its answer (docs/errors.md, "Other errors"). A subclass answers
# like its nearest listed ancestor: ConcurrentChange like Conflict.
DOMAIN_PROBLEMS: dict[type[DomainError], ProblemKind] = {
    InvalidParameter: INVALID_REQUEST,
    InvalidInput: INVALID_BODY,
    NotFound: ProblemKind(404, "Not found", "not_found"),
    Conflict: ProblemKind(409, "Conflict", "conflict"),
    NotPermitted: ProblemKind(403, "Forbidden", "forbidden"),
}


def problem_kind(exc: DomainError) -> ProblemKind:
    for cls in type(exc).__mro__:
        kind = DOMAIN_PROBLEMS.get(cls)
        if kind is not None:
            return kind
    return INVALID_REQUEST


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[bytes]:
    kind = problem_kind(exc)
    return problem_response(request, kind.status, kind.title, kind.code, detail=exc.message, field=exc.field)


def _from_body(errors: list[dict[str, Any]] | None) -> bool:
    return bool(errors) and all(error.get("source") == "body" for error in errors or ())


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if isinstance(exc, ValidationException):
        field, errors = _validation_field(exc.extra)
        # A JSON body that parsed but does not fit its schema (wrong type, unknown or missing field, out
        # of range) is 422 with msgspec's message, which carries the path (``at `$.scopes[0]```). The
        # rest — query and path parameters, a body that is not UTF-8, too deep, or holds NUL — is 400.
        if _from_body(errors):
            message = str((errors or [{}])[0].get("message") or exc.detail)
            kind = INVALID_BODY
            detail = message
        else:
            kind = INVALID_REQUEST
            detail = exc.detail if not field else f"{exc.detail}: {field}"
        return problem_response(
            request, kind.status, kind.title, kind.code, detail=detail, field=field, errors=errors
        )
    codes = {
        404: "not_found",
        405: "method_not_allowed",
        413: "request_too_large",
        415: "unsupported_media_type",
    }
    code = codes.get(exc.status_code, "http_error")
    title = exc.detail if exc.detail else "HTTP error"
    # A path or method no route knows is refused before the middleware runs: name the request here.
    named = request_id_of(request)
    request_id = named or request_id_for(request.headers.get("x-request-id"))
    response = problem_response(request, exc.status_code, title, code, request_id=request_id)
    if named is None:
        response.headers["X-Request-Id"] = request_id
    for name, value in (exc.headers or {}).items():  # 405 carries Allow
        response.headers[name] = value
    return response


RETRY_AFTER_SECONDS = 2  # a fast restart of PostgreSQL takes about a second


@dataclass(frozen=True)
class _Unavailable:
    status: int = 503
    title: str = "Service unavailable"
    code: str = "database_unavailable"
    detail: str = "the database cannot be reached; nothing was written"

    def problem(self, request_id: str | None) -> bytes:
        return problem_bytes(self.status, self.title, self.code, request_id, detail=self.detail)


DATABASE_UNAVAILABLE = _Unavailable()


def log_database_unavailable(exc: BaseException) -> None:
    log.error("database_unavailable", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def handle_database_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log_database_unavailable(exc)
    unavailable = DATABASE_UNAVAILABLE
    response = problem_response(
        request, unavailable.status, unavailable.title, unavailable.code, detail=unavailable.detail
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # Errors raised outside read_/write_transaction (a pooled connection dying mid-query, a restart)
    # are still the database being away, not a bug: 503 with Retry-After, never a 500.
    if is_unavailable(exc):
        return handle_database_unavailable(request, exc)
    log.exception("unhandled_error", exc_info=exc)
    return problem_response(
        request, HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error", "internal_error"
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    DomainError: handle_domain_error,
    HTTPException: handle_http_exception,
    DatabaseUnavailable: handle_database_unavailable,
    Exception: handle_unexpected,
}
