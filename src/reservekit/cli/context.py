"""Shared plumbing for commands: settings, a runtime without background tasks, output, errors."""

from __future__ import annotations

import getpass
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.audit.checkpoint import CheckpointError
from reservekit.db import DatabaseUnavailable, create_engine
from reservekit.domain.errors import DomainError
from reservekit.domain.events import Metadata
from reservekit.migrate import upgrade_to_head_async
from reservekit.runtime import Runtime
from reservekit.settings import Settings, SettingsError

JSON_HELP = "print JSON instead of text"


def cli_metadata() -> Metadata:
    """Events written from the command line name who ran it and where (there is no API key to name)."""
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER: still record the host
        user = None
    return Metadata(source="cli", actor_os_user=user, actor_host=socket.gethostname())


class UserError(Exception):
    """A mistake the user can fix: printed as one line, exit status 1."""


@asynccontextmanager
async def open_runtime(settings: Settings, *, catch_up: bool = True) -> AsyncIterator[Runtime]:
    """``catch_up=False``: no projection catch-up before or after the command (rebuilds)."""
    if settings.is_embedded:
        await upgrade_to_head_async(settings.effective_database_url)
    runtime = Runtime.build(settings)
    try:
        try:
            await runtime.start(background=False, catch_up=catch_up)
        except (ProgrammingError, OperationalError) as exc:
            if "does not exist" in str(exc) or "no such table" in str(exc):
                raise UserError(
                    "the database has no ReserveKit tables yet: run `reservekit migrate` first"
                ) from None
            raise
        yield runtime
        if catch_up:
            # Keep listings (and the other replicas' lookups) current with what this command wrote.
            await runtime.runner.run_all_once()
    finally:
        await runtime.stop()


@asynccontextmanager
async def open_database_read_only(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """Only an engine: no migration, no projection catch-up, no key view — nothing that writes.

    Verifiers use this, so a tampered log is never replayed into the read models before (or while)
    it is checked.
    """
    sqlite_file = make_url(settings.effective_database_url).database if settings.is_embedded else None
    if sqlite_file and sqlite_file != ":memory:" and not os.path.exists(sqlite_file):  # noqa: ASYNC240
        raise UserError(f"there is no database at {sqlite_file} yet")
    engine = create_engine(settings.effective_database_url)
    try:
        yield engine
    except (ProgrammingError, OperationalError) as exc:
        if "does not exist" in str(exc) or "no such table" in str(exc):
            raise UserError(
                "the database has no ReserveKit tables yet: run `reservekit migrate` first"
            ) from None
        raise
    finally:
        await engine.dispose()


def print_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


def describe_error(exc: BaseException) -> str | None:
    """The one line shown for a user-facing failure, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, UserError | SettingsError | CheckpointError):
        return str(exc)
    if isinstance(exc, DatabaseUnavailable | OSError):
        return f"cannot reach the database: {exc}"
    if isinstance(exc, DBAPIError) and _CONNECT_REFUSALS.search(str(exc.orig)):
        # The server answered but refused this database, role or password: the URL is the mistake.
        return f"cannot use the database: {str(exc.orig).splitlines()[0]} (check RESERVEKIT_DATABASE_URL)"
    return None


_CONNECT_REFUSALS = re.compile(
    r'database "[^"]*" does not exist|role "[^"]*" does not exist|password authentication failed'
    r"|no pg_hba.conf entry"
)
