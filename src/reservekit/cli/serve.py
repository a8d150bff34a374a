"""``reservekit serve`` and ``reservekit migrate``."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from reservekit.cli.context import UserError
from reservekit.db import create_engine
from reservekit.logging import configure_logging
from reservekit.migrate import upgrade_to_head
from reservekit.runtime import load_pepper
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
    # Fail here, with one line, rather than inside the server's worker with a traceback.
    load_pepper(settings)
    if settings.is_embedded:
        upgrade_to_head(settings.effective_database_url)
    asyncio.run(_check_database(settings))
    Granian(
        "reservekit.web.app:create_app_from_env",
        factory=True,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        log_enabled=False,
    ).serve()
    return 0


async def _check_database(settings: Settings) -> None:
    engine = create_engine(settings.effective_database_url, pool_size=1)
    where = settings.effective_database_url.split("@")[-1]
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT position FROM events LIMIT 1"))
    except (OSError, DBAPIError) as exc:
        if "events" in str(exc) and ("does not exist" in str(exc) or "no such table" in str(exc)):
            raise UserError(f"{where} has no ReserveKit tables yet: run `reservekit migrate` first") from None
        raise UserError(f"cannot reach the database at {where}: {str(exc).splitlines()[0]}") from None
    finally:
        await engine.dispose()


def run_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    upgrade_to_head(settings.effective_database_url)
    print(f"migrated {settings.effective_database_url.split('@')[-1]} to head")
    return 0
