"""problem+json answers as typed exceptions: every one carries ``status``, ``code`` and ``request_id``."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec


class ReserveKitError(Exception):
    """Any answer from the authority that is not a success, or no answer at all."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        field: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.field = field
        self.request_id = request_id
        self.retry_after = retry_after


class InvalidRequest(ReserveKitError):
    """400 / 413 / 415 / 422: the request itself is wrong; ``field`` names the culprit when known."""


class AuthenticationError(ReserveKitError):
    """401: the client's own key is missing, malformed, unknown, revoked or expired."""


class PermissionDenied(ReserveKitError):
    """403: origin mismatch, missing scope, or an action the key may not take."""


class NotFound(ReserveKitError):
    """404: no such resource in the caller's account (another account's ids also answer 404)."""


class Conflict(ReserveKitError):
    """409: a concurrent change won (e.g. two rotations of one key)."""


class RateLimited(ReserveKitError):
    """429: ``retry_after`` seconds until a retry may succeed."""


class ServiceUnavailable(ReserveKitError):
    """503, or the authority could not be reached at all (``status`` is None then)."""


class ServerError(ReserveKitError):
    """Any other 5xx."""


_BY_STATUS: dict[int, type[ReserveKitError]] = {
    400: InvalidRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
    503: ServiceUnavailable,
}


class _Problem(msgspec.Struct):
    title: str | None = None
    code: str | None = None
    detail: str | None = None
    field: str | None = None
    request_id: str | None = None


def retry_after_of(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def error_from_response(response: httpx.Response) -> ReserveKitError:
    try:
        problem = msgspec.json.decode(response.content, type=_Problem)
    except msgspec.DecodeError:
        problem = _Problem(title=response.reason_phrase or None)
    request_id = problem.request_id or response.headers.get("x-request-id")
    kind = _BY_STATUS.get(response.status_code) or (
        ServerError if response.status_code >= 500 else ReserveKitError
    )
    title = problem.title or f"HTTP {response.status_code}"
    message = f"{response.status_code} {title}" + (f": {problem.detail}" if problem.detail else "")
    extra: dict[str, Any] = {"retry_after": retry_after_of(response)}
    return kind(
        message,
        status=response.status_code,
        code=problem.code,
        title=problem.title,
        detail=problem.detail,
        field=problem.field,
        request_id=request_id,
        **extra,
    )
