"""``create_app()`` assembles the Litestar app from the runtime, controllers, middleware and plugins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from reservekit import __version__
from reservekit.auth.verification import KeyAuthority
from reservekit.clock import Clock
from reservekit.logging import configure_logging
from reservekit.runtime import Runtime
from reservekit.settings import Settings, load_settings
from reservekit.web.access import PUBLIC
from reservekit.web.accounts import AccountsController
from reservekit.web.api_keys import ApiKeysController
from reservekit.web.audit import AuditController
from reservekit.web.audit_flags import AuditFlagsController
from reservekit.web.bench import bench_router
from reservekit.web.cors import CorsMiddleware
from reservekit.web.dashboard.router import TEMPLATES, dashboard_router
from reservekit.web.dashboard.team_pages import invitation_mailer
from reservekit.web.dashboard.visit import DashboardServices
from reservekit.web.deps import WebServices, provide_call
from reservekit.web.docs_ui import PackagedSwaggerUI
from reservekit.web.health import HealthController, Operations
from reservekit.web.idempotency import IdempotencyMiddleware
from reservekit.web.key_changes import key_changes
from reservekit.web.leaks import leaks_router
from reservekit.web.middleware import AuthMiddleware
from reservekit.web.openapi_document import BEARER, shape_document
from reservekit.web.problems import EXCEPTION_HANDLERS
from reservekit.web.request_guard import GuardedRequest
from reservekit.web.request_log import RequestLog
from reservekit.web.services import ServicesController
from reservekit.web.strict import check_request
from reservekit.web.usage import UsageController
from reservekit.web.verify import verify_key
from reservekit.web.verify_shortcut import VerifyShortcut
from reservekit.web.webhooks import WebhookEndpointsController

log = structlog.get_logger("reservekit.server")


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, migrate: bool = False
) -> Litestar:
    settings = settings or load_settings()
    runtime = Runtime.build(settings, clock=clock)

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        await runtime.start(migrate=migrate)
        # The server's own lifecycle, beside the log's: when it served, and that it stopped cleanly.
        log.info(
            "server_started",
            version=__version__,
            database="sqlite" if settings.is_embedded else "postgresql",
            log_position=runtime.key_view.position,
        )
        try:
            yield
        finally:
            log.info("server_stopping")
            await runtime.stop()
            log.info("server_stopped")

    # Controllers see these, never the runtime: writes go through the application service.
    services = WebServices(application=runtime.application, engine=runtime.engine, clock=runtime.clock)
    operations = Operations(runtime)
    key_authority = KeyAuthority(
        authenticator=runtime.authenticator,
        key_view=runtime.key_view,
        usage=runtime.usage,
        engine=runtime.engine,
        clock=runtime.clock,
        wakeup=runtime.wakeup,
        poll_interval=settings.poll_interval_seconds,
        max_body_bytes=settings.max_body_bytes,
    )
    handlers: list[ControllerRouterHandler] = [
        HealthController,
        AccountsController,
        ApiKeysController,
        ServicesController,
        AuditController,
        UsageController,
        AuditFlagsController,
        WebhookEndpointsController,
        leaks_router(),
        verify_key,
        key_changes,
        dashboard_router(runtime.pepper, secure_cookies=settings.secure_cookies),
    ]
    if settings.bench_unauthenticated_account:
        handlers.append(bench_router(settings.bench_unauthenticated_account))
    key_check: dict[str, Any] = {
        "authenticator": runtime.authenticator,
        "usage": runtime.usage,
        "metrics": runtime.metrics,
        "clock": runtime.clock,
        "trusted": settings.trusted_networks,
    }
    config = AppConfig(
        route_handlers=handlers,
        dependencies={
            "call": Provide(provide_call, sync_to_thread=False),
            "ops": Provide(lambda: operations, sync_to_thread=False),
        },
        middleware=[
            # First: a browser's preflight carries no key and must not meet the key check.
            DefineMiddleware(CorsMiddleware, management_origins=settings.cors_allowed_origins),
            DefineMiddleware(AuthMiddleware, **key_check),
            # After authentication: a key's Idempotency-Key records belong to its account.
            DefineMiddleware(IdempotencyMiddleware, engine=runtime.engine, clock=runtime.clock),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=check_request,
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        request_class=GuardedRequest,
        openapi_config=OpenAPIConfig(
            title="ReserveKit API",
            version=__version__,
            path="/schema",
            # The document and its UI are not operations of the API: left out of the document itself.
            openapi_router=Router(path="/schema", route_handlers=[], opt=PUBLIC, include_in_schema=False),
            render_plugins=[
                JsonRenderPlugin(path=["/", "/openapi.json"]),
                PackagedSwaggerUI(path="/swagger"),
            ],
            components=Components(
                security_schemes={
                    BEARER: SecurityScheme(
                        type="http",
                        scheme="bearer",
                        bearer_format="sk_rsv_<32 base62><6 base62 CRC32>",
                        description="A ReserveKit secret key: Authorization: Bearer sk_rsv_…",
                    )
                }
            ),
        ),
    )
    app = Litestar.from_config(config)
    # Around routing itself (as Litestar wraps its own CORS): unrouted requests are logged and timed too.
    # Verify skips routing and the layers it does not use, behind the same key check (verify_shortcut.py).
    app.asgi_handler = RequestLog(
        VerifyShortcut(
            app.asgi_handler, app=app, authenticated_verify=AuthMiddleware(verify_key.fn, **key_check)
        ),
        metrics=runtime.metrics,
        trusted=settings.trusted_networks,
        access_log=settings.access_log,
    )
    shape_document(app)
    app.state.runtime = runtime
    app.state.key_authority = key_authority
    app.state.services = services
    app.state.webhooks = runtime.webhooks
    assert runtime.members is not None
    app.state.dashboard = DashboardServices(
        application=runtime.application,
        engine=runtime.engine,
        clock=runtime.clock,
        directory=runtime.members,
        signup_open=settings.signup_open,
        secure_cookies=settings.secure_cookies,
        mailer=invitation_mailer(settings),
    )
    return app


def create_app_from_env() -> Litestar:
    """The factory the server imports: settings and logging from the environment.

    The embedded default migrates itself (idempotent); PostgreSQL is migrated by ``reservekit migrate``.
    """
    settings = load_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    return create_app(settings, migrate=settings.is_embedded)
