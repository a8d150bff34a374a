"""``reservekit serve`` and ``reservekit migrate``."""

from __future__ import annotations

import argparse
from typing import Any

from reservekit.logging import configure_logging
from reservekit.migrate import upgrade_to_head
from reservekit.settings import Settings


def register(commands: Any, _instant: Any) -> None:
    serve = commands.add_parser("serve", help="serve the API (migrates the embedded database on first run)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=run_serve)
    migrate = commands.add_parser("migrate", help="upgrade the configured database to the latest schema")
    migrate.set_defaults(handler=run_migrate)


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    from granian import Granian
    from granian.constants import Interfaces

    configure_logging(level=settings.log_level, json=settings.log_json)
    if settings.is_embedded:
        upgrade_to_head(settings.effective_database_url)
    Granian(
        "reservekit.web.app:create_app_from_env",
        factory=True,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        log_enabled=False,
    ).serve()
    return 0


def run_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    upgrade_to_head(settings.effective_database_url)
    print(f"migrated {settings.effective_database_url.split('@')[-1]} to head")
    return 0
