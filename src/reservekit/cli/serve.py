"""``reservekit serve``, ``reservekit worker`` and ``reservekit migrate``."""

from __future__ import annotations

import argparse
import asyncio
import errno
import signal
import socket
import sys
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from reservekit.cli.context import JSON_HELP, UserError, print_json
from reservekit.db import create_engine
from reservekit.logging import configure_logging
from reservekit.migrate import upgrade_to_head
from reservekit.runtime import Runtime, load_pepper
from reservekit.settings import Settings


def register(commands: Any, _instant: Any) -> None:
    serve = commands.add_parser("serve", help="serve the API (migrates the embedded database on first run)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address or host name to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=_port, default=8000, help="TCP port, 1 to 65535 (default 8000)")
    serve.set_defaults(handler=run_serve)
    worker = commands.add_parser(
        "worker",
        help="run projections, detectors, webhook deliveries (beside serve with RESERVEKIT_RUN_WORKER=false)",
    )
    worker.set_defaults(handler=run_worker)
    migrate = commands.add_parser("migrate", help="upgrade the configured database to the latest schema")
    migrate.add_argument("--json", action="store_true", help=JSON_HELP)
    migrate.set_defaults(handler=run_migrate)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65_535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1 to 65535)")
    return int(text)


def resolve_host(host: str) -> str:
    """The address to bind for an address or a host name (the server itself takes only addresses)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UserError(f"cannot listen on {host!r}: no such address or host name") from None
    return str(infos[0][4][0])


def ensure_free(address: str, port: int) -> None:
    """Refuse a port another process listens on: the server binds with SO_REUSEPORT and would share it."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Connections of a server just stopped linger in TIME_WAIT; they are not a listener. Linux still
        # refuses this bind while another socket listens on the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except PermissionError:
            raise UserError(
                f"not allowed to listen on port {port} (ports below 1024 need privileges)"
            ) from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(
                    f"{address}:{port} is already in use (another server is listening there)"
                ) from None
            raise UserError(f"cannot listen on {address}:{port}: {exc.strerror}") from None


def url_for(address: str, port: int) -> str:
    return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    from granian import Granian
    from granian.constants import Interfaces

    configure_logging(level=settings.log_level, json=settings.log_json)
    # Fail here, with one line, rather than inside the server's worker with a traceback.
    address = resolve_host(args.host)
    ensure_free(address, args.port)
    load_pepper(settings)
    if settings.is_embedded:
        upgrade_to_head(settings.effective_database_url)
    asyncio.run(_check_database(settings))
    print(f"ReserveKit key authority listening on {url_for(address, args.port)}", flush=True)
    print(dashboard_banner(url_for(address, args.port), signup_open=settings.signup_open), flush=True)
    Granian(
        "reservekit.web.app:create_app_from_env",
        factory=True,
        address=address,
        port=args.port,
        interface=Interfaces.ASGI,
        log_enabled=False,
    ).serve()
    return 0


def dashboard_banner(base_url: str, *, signup_open: bool) -> str:
    """The second line a newcomer sees: where the dashboard is and how to get in."""
    how = "sign up there to get a key" if signup_open else "sign-up is closed: `reservekit members add`"
    return f"Dashboard: {base_url}/dashboard ({how})"


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


async def run_worker(_args: argparse.Namespace, settings: Settings) -> int:
    """The background half of a replica, in a process of its own, until SIGTERM or SIGINT."""
    runtime = Runtime.build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await runtime.start(migrate=settings.is_embedded, serve=False, work=True)
    print(
        "ReserveKit worker running: projections, detectors, webhook deliveries", file=sys.stderr, flush=True
    )
    try:
        await stop.wait()
    finally:
        await runtime.stop()
    return 0


def run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    upgrade_to_head(settings.effective_database_url)
    where = settings.effective_database_url.split("@")[-1]
    if args.json:
        print_json({"migrated": where})
    else:
        print(f"migrated {where} to head")
    return 0
