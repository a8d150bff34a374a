"""``projections/_upsert.py`` reuses the statements it builds, and only where reusing cannot go stale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from projections import _upsert
from projections._upsert import insert_many, upsert_many

metadata = MetaData()
scores = Table(
    "test_upsert_scores",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("score", BigInteger, nullable=False),
    Column("note", String(32)),
)


@pytest.fixture
async def table(engine: AsyncEngine) -> AsyncIterator[Table]:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield scores
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)


async def rows_of(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(select(scores).order_by(scores.c.name))]


def replace_score(excluded: Any) -> dict[str, Any]:
    return {"score": excluded.score}


async def test_a_plain_function_s_statement_is_built_once_and_reused(
    engine: AsyncEngine, table: Table
) -> None:
    _upsert._STATEMENTS.clear()
    async with engine.begin() as conn:
        await insert_many(conn, table, ("name", "score", "note"), [("a", 1, None)])
        await upsert_many(conn, table, [{"name": "a", "score": 5}], conflict=("name",), set_=replace_score)
        built = dict(_upsert._STATEMENTS)
        await upsert_many(
            conn, table, [{"name": "a", "score": 7}, {"name": "b", "score": 2}], conflict=("name",),
            set_=replace_score,
        )  # fmt: skip
    assert await rows_of(engine) == [("a", 7, None), ("b", 2, None)]
    upserts = [key for key in _upsert._STATEMENTS if key[0] == "upsert"]
    assert len(upserts) == 1
    assert all(_upsert._STATEMENTS[key] is statement for key, statement in built.items()), "built again"


async def test_a_closure_is_built_every_time_so_it_never_applies_an_old_captured_value(
    engine: AsyncEngine, table: Table
) -> None:
    """``set_`` closing over a value (as key_usage's do over their tables) must not hit a statement
    cached with an earlier value: the second upsert adds 10, not the first one's 1."""
    _upsert._STATEMENTS.clear()
    async with engine.begin() as conn:
        await insert_many(conn, table, ("name", "score", "note"), [("a", 0, None)])
        for step in (1, 10):
            await upsert_many(
                conn,
                table,
                [{"name": "a", "score": 0}],
                conflict=("name",),
                set_=lambda excluded, step=step: {"score": table.c.score + step},
            )
        for note in ("first", "second"):
            await upsert_many(
                conn,
                table,
                [{"name": "a", "score": 0}],
                conflict=("name",),
                set_=lambda excluded: {"note": note},  # noqa: B023 - the closure is the point
            )
    assert await rows_of(engine) == [("a", 11, "second")]
    assert not [key for key in _upsert._STATEMENTS if key[0] == "upsert"]


async def test_the_statement_cache_stays_bounded(engine: AsyncEngine, table: Table) -> None:
    _upsert._STATEMENTS.clear()
    async with engine.begin() as conn:
        for n in range(_upsert._MAX_STATEMENTS + 5):
            _upsert._remember(("filler", n), object())
        await upsert_many(conn, table, [{"name": "a", "score": 3}], conflict=("name",), set_=replace_score)
    assert len(_upsert._STATEMENTS) <= _upsert._MAX_STATEMENTS
    assert await rows_of(engine) == [("a", 3, None)]


def add_score(excluded: Any) -> dict[str, Any]:
    return {"score": scores.c.score + excluded.score}


async def test_returning_answers_each_row_as_stored_after_the_upsert(
    engine: AsyncEngine, table: Table
) -> None:
    async with engine.begin() as conn:
        await insert_many(conn, table, ("name", "score", "note"), [("a", 5, None)])
        touched = await upsert_many(
            conn, table, [{"name": "a", "score": 2}, {"name": "b", "score": 3}], conflict=("name",),
            set_=add_score, returning=("name", "score"),
        )  # fmt: skip
        silent = await upsert_many(
            conn, table, [{"name": "c", "score": 1}], conflict=("name",), set_=add_score
        )
    assert sorted(touched) == [("a", 7), ("b", 3)]
    assert silent == []
