"""Fixtures that run the storage and engine tests on both backends.

Every test gets its own database, cloned from one migrated template per session (a file copy on
SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL). We do not wrap tests in a rolled-back outer
transaction: the code under test owns its transactions, advisory locks and background tailers, which
must see each other's commits exactly as in production.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.db import create_engine
from reservekit.events.store import SqlEventStore
from reservekit.migrate import upgrade_to_head
from reservekit.settings import Settings

TEST_PEPPER = "0123456789abcdef" * 4
_counter = itertools.count()


def _postgres_admin_url() -> str | None:
    explicit = os.environ.get("RESERVEKIT_TEST_DATABASE_URL")
    if explicit:
        return explicit.replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    except OSError:
        return None


POSTGRES_ADMIN_URL = _postgres_admin_url()


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _pg_admin(*statements: str) -> None:
    import asyncpg

    async def run() -> None:
        assert POSTGRES_ADMIN_URL is not None
        conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if POSTGRES_ADMIN_URL is None and os.environ.get("CI") == "true":
        raise pytest.UsageError(
            "CI=true but no PostgreSQL answers on 127.0.0.1:5432 (or RESERVEKIT_TEST_DATABASE_URL)"
        )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_to_head(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    if POSTGRES_ADMIN_URL is None:
        pytest.skip("PostgreSQL is not available on 127.0.0.1:5432 (set RESERVEKIT_TEST_DATABASE_URL)")
    name = f"rk_template_{os.getpid()}"
    _pg_admin(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    upgrade_to_head(make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False))
    yield name
    _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _fresh_database(backend, request, tmp_path)


def _fresh_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "reservekit.db"
        shutil.copyfile(template, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    template_name: str = request.getfixturevalue("postgres_template")
    assert POSTGRES_ADMIN_URL is not None
    name = f"rk_test_{os.getpid()}_{next(_counter)}"
    _pg_admin(f"CREATE DATABASE {name} TEMPLATE {template_name}")
    yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        key_pepper=TEST_PEPPER,
        poll_interval_seconds=0.05,
    )


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def store(engine: AsyncEngine) -> SqlEventStore:
    return SqlEventStore(engine)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database, for behaviour only PostgreSQL has (NOTIFY, true concurrency)."""
    yield from _fresh_database("postgres", request, tmp_path)
