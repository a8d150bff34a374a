"""One INSERT … ON CONFLICT DO UPDATE per table per batch, on either backend.

PostgreSQL and SQLite spell upserts the same way, but SQLAlchemy builds them from each dialect's own
``insert``. Projections aggregate a batch in Python first, so one statement never names a conflict key
twice (PostgreSQL refuses to update one row twice in a single statement).

On PostgreSQL the rows travel as one array per column and are expanded with ``unnest``: one statement
execution per batch instead of one per row (executemany), which more than halves the cost of a rebuild.
SQLite gets the same statement through executemany.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

Excluded = Any  # the ``excluded`` pseudo-table of the statement being built


def dialect_insert(conn: AsyncConnection, table: Table) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for dialect {conn.dialect.name!r}")


async def upsert_many(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str],
    set_: Callable[[Excluded], Mapping[str, Any]],
    where: Callable[[Excluded], ColumnElement[bool]] | None = None,
) -> None:
    """Insert ``rows`` (all with the same keys); on a ``conflict`` key, update with ``set_(excluded)``
    where ``where(excluded)`` holds. At most one row per conflict key."""
    if not rows:
        return
    columns = list(rows[0])
    statement = dialect_insert(conn, table)
    params: Sequence[Mapping[str, Any]] | dict[str, Any] = rows
    if isinstance(statement, postgresql.Insert):
        arrays = {
            name: bindparam(f"unnest_{name}", type_=postgresql.ARRAY(table.c[name].type)) for name in columns
        }
        source = select(*(func.unnest(array).label(name) for name, array in arrays.items()))
        statement = statement.from_select(columns, source)
        params = {f"unnest_{name}": [row[name] for row in rows] for name in columns}
    excluded = statement.excluded
    upsert = statement.on_conflict_do_update(
        index_elements=list(conflict),
        set_=dict(set_(excluded)),
        where=where(excluded) if where is not None else None,
    )
    await conn.execute(upsert, params if isinstance(params, dict) else list(params))


async def insert_many(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """A plain INSERT of ``rows`` (all with the same keys): one ``unnest`` statement on PostgreSQL."""
    if not rows:
        return
    columns = list(rows[0])
    if conn.dialect.name != "postgresql":
        await conn.execute(insert(table), list(rows))
        return
    arrays = [
        bindparam(f"unnest_{name}", [row[name] for row in rows], type_=postgresql.ARRAY(table.c[name].type))
        for name in columns
    ]
    source = select(*(func.unnest(array).label(name) for name, array in zip(columns, arrays, strict=True)))
    await conn.execute(insert(table).from_select(columns, source))
