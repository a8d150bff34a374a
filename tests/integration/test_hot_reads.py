"""``db.fetch_all`` on PostgreSQL: a small asyncpg pool of its own, with no ping, reset or transaction.

Each checkout from SQLAlchemy's pool cost a greenlet hop and the pre-ping's round trip, and asyncpg's
default release sends a reset (another round trip): a hot read needs neither. What it must still do:
answer after the server dropped a connection, and close its connections with the engine.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import func, literal, select

from reservekit.db import Read, create_engine, fetch_all

BACKEND_PID = Read(select(func.pg_backend_pid().label("pid")))


def _dsn(postgres_url: str) -> str:
    return postgres_url.replace("postgresql+asyncpg", "postgresql")


async def test_a_hot_read_sends_one_statement_and_leaves_sqlalchemys_pool_alone(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(postgres_url)
    other_statements: list[str] = []
    resets: list[object] = []
    real_execute, real_reset = asyncpg.Connection.execute, asyncpg.Connection.reset

    async def recorded_execute(self: asyncpg.Connection, query: str, *args: object, **kw: object) -> str:
        other_statements.append(query)
        return await real_execute(self, query, *args, **kw)  # type: ignore[arg-type]

    async def recorded_reset(self: asyncpg.Connection, **kw: float | None) -> None:
        resets.append(self)
        await real_reset(self, **kw)

    monkeypatch.setattr(asyncpg.Connection, "execute", recorded_execute)
    monkeypatch.setattr(asyncpg.Connection, "reset", recorded_reset)
    try:
        for _ in range(3):
            rows = await fetch_all(engine, Read(select(literal(7).label("seven"))), {})
            assert [tuple(row) for row in rows] == [(7,)]
        assert other_statements == [], "a ping, BEGIN or reset went to the server"
        assert resets == [], "asyncpg's default reset (RESET ALL, UNLISTEN *, ...) ran on release"
        assert engine.sync_engine.pool.checkedin() == 0  # SQLAlchemy never opened a connection
    finally:
        await engine.dispose()


async def test_a_read_after_the_server_dropped_the_pooled_connection_gets_a_new_one(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url, pool_size=1)
    admin = await asyncpg.connect(_dsn(postgres_url))
    try:
        [(first,)] = await fetch_all(engine, BACKEND_PID, {})
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
        [(second,)] = await fetch_all(engine, BACKEND_PID, {})
        assert second != first
    finally:
        await admin.close()
        await engine.dispose()


async def test_disposing_the_engine_closes_the_read_pool(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    admin = await asyncpg.connect(_dsn(postgres_url))
    try:
        [(pid,)] = await fetch_all(engine, BACKEND_PID, {})
        alive = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
        assert await admin.fetchval(alive, pid) == 1
        await engine.dispose()
        for _ in range(100):  # the backend goes once the server has read the terminate message
            if await admin.fetchval(alive, pid) == 0:
                break
            await asyncio.sleep(0.02)
        assert await admin.fetchval(alive, pid) == 0, "the read pool's connection outlived the engine"
    finally:
        await admin.close()
