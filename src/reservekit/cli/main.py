"""Entry point: parses arguments, runs one command, turns user mistakes into one line on stderr."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from importlib.metadata import version as package_version
from typing import Any

import shtab

from reservekit import clock
from reservekit.cli import accounts, audit, keys, members, projections, serve, webhooks
from reservekit.cli.context import describe_error
from reservekit.logging import configure_logging, level_number
from reservekit.settings import load_settings

Handler = Callable[[argparse.Namespace, Any], Coroutine[Any, Any, int] | int]


def parse_instant(value: str) -> datetime:
    """The same reading of a timestamp as the API's query parameters (``clock.parse_instant``)."""
    try:
        return clock.parse_instant(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reservekit", description="ReserveKit key authority")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version('reservekit')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (serve, accounts, members, keys, projections, audit, webhooks):
        module.register(commands, parse_instant)
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or tcsh)",
    )
    completion.add_argument("shell", choices=shtab.SUPPORTED_SHELLS, help="the shell to complete for")
    completion.set_defaults(handler=run_completion)
    return parser


def run_completion(args: argparse.Namespace, _settings: Any) -> int:
    # shtab writes the script from the parser itself, so completion never drifts from the commands.
    sys.stdout.write(shtab.complete(build_parser(), shell=args.shell))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        settings = load_settings()
        # stdout is the command's answer (often --json): logs go to stderr, warnings and worse only.
        # `serve` configures its own logging (stdout, RESERVEKIT_LOG_LEVEL).
        quiet = "WARNING" if level_number(settings.log_level) < logging.WARNING else settings.log_level
        configure_logging(level=quiet, json=settings.log_json, stream=sys.stderr)
        outcome = handler(args, settings)
        return asyncio.run(outcome) if inspect.iscoroutine(outcome) else int(outcome)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = describe_error(exc)
        if message is None:
            raise
        sys.stderr.write(f"reservekit: error: {message}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
