"""Engines and transactions for both backends.

SQLite: WAL, a busy timeout, and writers take ``BEGIN IMMEDIATE`` so two writers queue on the file lock
instead of failing half-way when a read transaction upgrades. PostgreSQL: asyncpg with a modest pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_IMMEDIATE = "reservekit_immediate"


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; callers answer 503 and write nothing."""


def is_sqlite(engine: AsyncEngine | AsyncConnection) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _install_sqlite_hooks(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": "reservekit"}},
    )


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy emits BEGIN itself (below); the driver's implicit BEGIN would break that.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_IMMEDIATE) else "BEGIN")


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that will write: on SQLite it holds the write lock from its first statement."""
    try:
        async with engine.connect() as conn:
            if is_sqlite(engine):
                await conn.execution_options(**{_IMMEDIATE: True})
            async with conn.begin():
                yield conn
    except (OperationalError, OSError, ConnectionError) as exc:
        if _is_connectivity_error(exc):
            raise DatabaseUnavailable(str(exc)) from exc
        raise


@asynccontextmanager
async def read_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    try:
        async with engine.connect() as conn, conn.begin():
            yield conn
    except (OperationalError, OSError, ConnectionError) as exc:
        if _is_connectivity_error(exc):
            raise DatabaseUnavailable(str(exc)) from exc
        raise


@asynccontextmanager
async def read_only_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction the database itself refuses to write in, for verifiers that must change nothing.

    PostgreSQL: ``START TRANSACTION READ ONLY``. SQLite has no read-only transactions, so the connection
    is put in ``query_only`` mode for the duration and back afterwards (it returns to the pool).
    """
    try:
        async with engine.connect() as conn:
            if is_sqlite(engine):
                await conn.exec_driver_sql("PRAGMA query_only = ON")
                await conn.commit()
            else:
                await conn.execution_options(postgresql_readonly=True)
            try:
                async with conn.begin():
                    yield conn
            finally:
                if is_sqlite(engine):
                    await conn.exec_driver_sql("PRAGMA query_only = OFF")
                    await conn.commit()
    except (OperationalError, OSError, ConnectionError) as exc:
        if _is_connectivity_error(exc):
            raise DatabaseUnavailable(str(exc)) from exc
        raise


def _is_connectivity_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError | ConnectionError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    text = str(exc).lower()
    return any(
        marker in text
        for marker in ("connection refused", "could not connect", "connection was closed", "unable to open")
    )
