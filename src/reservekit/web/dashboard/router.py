"""``dashboard_router``: the pages, their static files, CSRF, security headers and HTML error pages.

CSRF uses Litestar's ``CSRFMiddleware`` on this router only: the API authenticates with bearer keys,
which a browser never sends by itself, so it needs none. Every response under ``/dashboard`` gets a
strict Content-Security-Policy (scripts and styles only from this app, no inline script), may not be
framed, and sends the Referer only to this origin.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from reservekit.domain.errors import DomainError, InvalidInput, NotFound
from reservekit.domain.roles import RoleRefused
from reservekit.web.access import PUBLIC
from reservekit.web.dashboard.auth_pages import AuthPages
from reservekit.web.dashboard.keys_pages import KeysPages
from reservekit.web.dashboard.operator_pages import OperatorPages
from reservekit.web.dashboard.pages import render
from reservekit.web.dashboard.security_pages import SecurityPages
from reservekit.web.dashboard.team_pages import JoinPages, TeamPages
from reservekit.web.dashboard.usage_pages import UsagePages
from reservekit.web.dashboard.visit import SignInRequired, provide_visit
from reservekit.web.dashboard.webhook_pages import WebhookPages
from reservekit.web.problems import InvalidParameter

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Adds the headers to every response under /dashboard, error pages and static files included."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        await self._app(scope, receive, wrapped)


def csrf_config(pepper: bytes, *, secure: bool) -> CSRFConfig:
    # Derived from the key pepper so every replica signs and checks the same tokens without a new secret.
    secret = hmac.new(pepper, b"reservekit dashboard csrf", hashlib.sha256).hexdigest()
    return CSRFConfig(
        secret=secret,
        cookie_name="__Host-rk_csrf" if secure else "rk_csrf",
        cookie_secure=secure,
        cookie_httponly=True,
        cookie_samesite="lax",
        cookie_path="/",
    )


def _not_found(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    del request, exc
    return render("error.html", status=404, title="Not found", message="There is no such page or key here.")


def _sign_in(request: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    del exc
    had_cookie = any(name.endswith("rk_session") for name in request.cookies)
    return Redirect(
        path="/dashboard/signin?expired=true" if had_cookie else "/dashboard/signin", status_code=303
    )


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    del request
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        message = "This form expired or did not come from this page. Go back, reload, and try again."
        return render("error.html", status=403, title="Form refused", message=message)
    return render("error.html", status=exc.status_code, title="Something went wrong", message=exc.detail)


def _domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    if isinstance(exc, RoleRefused):
        # nav: the member is signed in, so the header keeps the pages their role does open.
        return render("error.html", status=403, title="Not allowed", message=exc.message, nav="refused")
    if isinstance(exc, NotFound):
        return _not_found(request, exc)
    if isinstance(exc, InvalidInput | InvalidParameter):  # e.g. an unknown query parameter
        return render("error.html", status=400, title="Bad request", message=exc.message)
    return render("error.html", status=409, title="Not possible", message=exc.message)


def dashboard_router(pepper: bytes, *, secure_cookies: bool) -> Router:
    static = create_static_files_router(
        path="/static", directories=[STATIC], opt=PUBLIC, name="dashboard-static"
    )
    return Router(
        path="/dashboard",
        route_handlers=[
            AuthPages,
            KeysPages,
            UsagePages,
            SecurityPages,
            static,
            TeamPages,
            JoinPages,
            WebhookPages,
            OperatorPages,
        ],
        dependencies={"visit": Provide(provide_visit, sync_to_thread=False)},
        middleware=[
            SecurityHeaders,
            DefineMiddleware(CSRFMiddleware, config=csrf_config(pepper, secure=secure_cookies)),
        ],
        exception_handlers={
            SignInRequired: _sign_in,
            DomainError: _domain_error,
            HTTPException: _http_error,
            404: _not_found,
        },
        opt=PUBLIC,
        include_in_schema=False,
    )
