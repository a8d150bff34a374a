"""Engines and transactions for both backends.

SQLite: WAL, a busy timeout, and writers take ``BEGIN IMMEDIATE`` so two writers queue on the file lock
instead of failing half-way when a read transaction upgrades. PostgreSQL: asyncpg with a modest pool,
pre-ping on checkout (one round trip, ``_ping_in_one_round_trip``) and connections recycled after
``POOL_RECYCLE_SECONDS``. Pre-ping costs a round trip per checkout, but without it every pooled
connection a restarted server dropped failed its next write once (asyncpg's "connection is closed"
does not invalidate the whole pool), so a restart cost up to a pool's worth of 503s and stopped
background writers
(``test_background_runner_resumes_after_the_database_drops_its_connections``).

Hot reads (``fetch_all`` with a ``Read``): one statement compiled once per dialect, no transaction. On
PostgreSQL that is one round trip on a connection of a small asyncpg pool kept beside SQLAlchemy's
(``_PostgresReader``: no greenlet hop, no pre-ping; asyncpg caches the prepared statement per
connection); on SQLite it runs on the event loop's thread with a read-only connection of its own,
because a hop to aiosqlite's thread (several per read: BEGIN, execute, fetch, COMMIT, reset) costs far
more than a bounded indexed read. Use it only for bounded reads by index (a page of rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import DatabaseError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql import Select
from sqlalchemy.util.concurrency import await_

_IMMEDIATE = "reservekit_immediate"
POOL_RECYCLE_SECONDS = 1800


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; callers answer 503 and write nothing."""


def is_sqlite(engine: AsyncEngine | AsyncConnection) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            create_private_file(Path(parsed.database))
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _install_sqlite_hooks(engine)
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=POOL_RECYCLE_SECONDS,
        connect_args={"server_settings": {"application_name": "reservekit"}},
    )
    engine.sync_engine.dialect.do_ping = _ping_in_one_round_trip  # type: ignore[method-assign]
    return engine


def _ping_in_one_round_trip(dbapi_connection: Any) -> bool:
    """Pre-ping as one simple-protocol ``SELECT 1``: no transaction, no prepared statement.

    SQLAlchemy's asyncpg ping wraps a prepared ``fetchrow(";")`` in BEGIN … ROLLBACK so that it is safe
    behind pgbouncer's transaction mode (sqlalchemy#10226): three round trips on every checkout, about
    0.3 ms, and a single-key create checks out three times. A simple-protocol statement prepares
    nothing, so it is just as safe there, in one round trip. Errors are translated as the driver
    adapter's own ping does, so a dead connection still reads as a disconnect and is replaced.
    """
    try:
        await_(dbapi_connection._connection.execute("SELECT 1"))
    except Exception as error:
        dbapi_connection._handle_exception(error)
    return True


def create_private_file(path: Path) -> None:
    """Create the SQLite file (and its directory) readable by this user only: 0600 in a 0700 directory.

    SQLite gives its -wal and -shm files the database file's mode, so they are private too. A file that
    already exists keeps its mode: an operator may have chosen another one on purpose.
    """
    if not path.parent.exists():
        with contextlib.suppress(FileExistsError):  # another process may create it at the same time
            path.parent.mkdir(mode=0o700, parents=True)
            path.parent.chmod(0o700)  # mkdir's mode is filtered by the umask; be exact
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


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
    except (DBAPIError, OSError, ConnectionError) as exc:
        if _is_connectivity_error(exc):
            raise DatabaseUnavailable(str(exc)) from exc
        raise


@asynccontextmanager
async def read_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    try:
        async with engine.connect() as conn, conn.begin():
            yield conn
    except (DBAPIError, OSError, ConnectionError) as exc:
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
    except (DBAPIError, OSError, ConnectionError) as exc:
        if _is_connectivity_error(exc):
            raise DatabaseUnavailable(str(exc)) from exc
        raise


# SQLSTATEs that mean "the database is not there right now" rather than "this statement is wrong":
# class 08 (connection exception), 57P01-03 (admin/crash shutdown, starting up), 53300 (too many clients).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
_UNAVAILABLE_MARKERS = (
    "connection refused",
    "could not connect",
    "connection was closed",
    "connection is closed",
    "unable to open",
    "shutting down",
    "starting up",
    "terminating connection",
    "cannot connect now",
    "server closed the connection",
    "connection reset",
    # asyncpg's protocol state machine left mid-operation by a connection the server cut: the pooled
    # connection is dead even though asyncpg has not noticed yet (seen during a PostgreSQL restart).
    "cannot switch to state",
)


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or anything it wraps) says the database cannot be reached or is restarting.

    Walks the chain (SQLAlchemy's ``orig``, ``__cause__``, ``__context__``) because asyncpg's errors
    arrive wrapped, sometimes twice, and a fast restart surfaces as "the database system is shutting
    down" / "starting up" (SQLSTATE 57P01/57P03), not as a refused connection.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError | ConnectionError | TimeoutError):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        sqlstate = str(getattr(current, "sqlstate", "") or "")
        if sqlstate and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        if type(current).__name__ in ("ConnectionDoesNotExistError", "InterfaceError") and (
            "closed" in str(current).lower()
        ):
            return True
        text = str(current).lower()
        if any(marker in text for marker in _UNAVAILABLE_MARKERS):
            return True
        pending.extend((getattr(current, "orig", None), current.__cause__, current.__context__))
    return False


_is_connectivity_error = is_unavailable


async def copy_records(
    conn: AsyncConnection, table: str, records: Sequence[Sequence[Any]], columns: Sequence[str]
) -> None:
    """PostgreSQL ``COPY … FROM STDIN`` (binary) of plain tuples, inside ``conn``'s transaction.

    asyncpg's own errors, which SQLAlchemy does not wrap here, reach callers as other statements' would:
    a dead connection leaves the pool as ``DatabaseUnavailable``, anything else is a ``DatabaseError``.
    """
    raw = await conn.get_raw_connection()
    try:
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            table, records=records, columns=list(columns)
        )
    except Exception as exc:
        if is_unavailable(exc):
            await conn.invalidate()
            raise DatabaseUnavailable(str(exc)) from exc
        raise DatabaseError(f"COPY {table}", None, exc) from exc


class Read:
    """A read-only statement with named bind parameters, compiled once per dialect.

    ``fetch_all(engine, read, params)`` runs it with one round trip and no transaction; rows come back
    as plain sequences in the statement's column order.
    """

    __slots__ = ("_compiled", "_statement")

    def __init__(self, statement: Select[Any]) -> None:
        self._statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {}

    def compiled_for(self, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self._statement.compile(dialect=dialect)
            found = (str(compiled), tuple(compiled.positiontup or ()), dict(compiled.params))
            self._compiled[dialect.name] = found
        return found


async def fetch_all(engine: AsyncEngine, read: Read, params: Mapping[str, Any]) -> list[Sequence[Any]]:
    sql, names, defaults = read.compiled_for(engine.dialect)
    args = [params[name] if name in params else defaults[name] for name in names]
    if not is_sqlite(engine):
        return await _postgres_fetch(engine, sql, args)
    if engine.url.database in (None, "", ":memory:"):  # a private in-memory database: only the pool has it
        async with read_transaction(engine) as conn:
            return list((await conn.exec_driver_sql(sql, tuple(args))).tuples())
    return _sqlite_reader(engine).fetch(sql, args)


async def _postgres_fetch(engine: AsyncEngine, sql: str, args: list[Any]) -> list[Sequence[Any]]:
    reader = _POSTGRES_READERS.get(engine.sync_engine)
    if reader is None:
        reader = _POSTGRES_READERS[engine.sync_engine] = _PostgresReader(engine)
    return await reader.fetch(sql, args)


class _PostgresReader:
    """A small asyncpg pool of its own for ``fetch_all``, beside SQLAlchemy's (see the module doc).

    Checking a connection out of SQLAlchemy's pool costs a greenlet hop, its events and the pre-ping's
    round trip; a read that is safe to repeat needs none of them. A connection a restart killed fails
    the read: the pool's connections are then all expired (replaced at their next checkout) and the read
    runs once more before the caller hears of it. Released connections are not reset (asyncpg's
    default sends ``RESET ALL`` and friends, a round trip): these connections only ever run a
    single statement outside a transaction and change no session state. Closed with the engine
    (``engine_disposed``).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        _, params = engine.dialect.create_connect_args(engine.url)
        for adapter_only in ("prepared_statement_cache_size", "prepared_statement_name_func"):
            params.pop(adapter_only, None)
        params.setdefault("server_settings", {"application_name": "reservekit"})
        self._params = params
        self._max_size = engine.pool.size() if isinstance(engine.pool, QueuePool) else 10
        self._pool: asyncio.Task[asyncpg.Pool] | None = None
        event.listen(engine.sync_engine, "engine_disposed", self._on_dispose)

    async def fetch(self, sql: str, args: list[Any]) -> list[Sequence[Any]]:
        for attempt in (1, 2):
            try:
                pool = await self._started()
                async with pool.acquire() as conn:
                    return list(await conn.fetch(sql, *args))
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                if self._pool is not None and self._pool.done() and not self._pool.exception():
                    await self._pool.result().expire_connections()
                else:
                    self._pool = None  # the pool itself could not start: try again next time
                if attempt == 2:
                    raise DatabaseUnavailable(str(exc)) from exc
        raise AssertionError("unreachable")

    def _started(self) -> asyncio.Task[asyncpg.Pool]:
        if self._pool is None:
            # min_size=0: nothing is opened before a read needs it (an engine may never read).
            self._pool = asyncio.ensure_future(
                asyncpg.create_pool(min_size=0, max_size=self._max_size, reset=_keep_session, **self._params)
            )
        return self._pool

    def _on_dispose(self, _engine: Engine) -> None:
        task, self._pool = self._pool, None
        if task is None or not task.done() or task.exception() is not None:
            return
        pool = task.result()
        try:
            await_(asyncio.wait_for(pool.close(), timeout=5))
        except Exception:
            pool.terminate()


async def _keep_session(_connection: asyncpg.Connection) -> None:
    return None


_POSTGRES_READERS: weakref.WeakKeyDictionary[Engine, _PostgresReader] = weakref.WeakKeyDictionary()


class _SqliteReader:
    """One read-only sqlite3 connection per engine, used on the event loop's thread (see the module doc)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def fetch(self, sql: str, args: list[Any]) -> list[Sequence[Any]]:
        try:
            if self._conn is None:
                # WAL readers never wait for writers; the short timeout only covers WAL recovery.
                conn = sqlite3.connect(self._path, timeout=1.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA query_only = ON")
                self._conn = conn
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            self.close()
            if is_unavailable(exc):
                raise DatabaseUnavailable(str(exc)) from exc
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_SQLITE_READERS: weakref.WeakKeyDictionary[Engine, _SqliteReader] = weakref.WeakKeyDictionary()


def _sqlite_reader(engine: AsyncEngine) -> _SqliteReader:
    reader = _SQLITE_READERS.get(engine.sync_engine)
    if reader is None:
        reader = _SQLITE_READERS[engine.sync_engine] = _SqliteReader(str(engine.url.database))
    return reader


def close_readers(engine: AsyncEngine) -> None:
    """Close the engine's SQLite reader (``Runtime.stop``, before ``dispose``); a later read reopens it."""
    reader = _SQLITE_READERS.pop(engine.sync_engine, None)
    if reader is not None:
        reader.close()
