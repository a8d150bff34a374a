"""A scratch PostgreSQL database per benchmark run, migrated to head and dropped afterwards (also on Ctrl-C).

Shared by ``bench_lifecycle.py``, ``bench_rebuild.py`` and ``bench_usage_scale.py``; each exposes a
``run(...)`` that returns result rows (``Row``) so ``run_all.py`` can call it, and a ``main()``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import TypedDict

import asyncpg

DEFAULT_PG = os.environ.get("RESERVEKIT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


class Row(TypedDict):
    """One line of the benchmark table: what was measured, the figure, its unit, the target, pass/fail."""

    measure: str
    value: float
    unit: str
    target: str
    ok: bool | None


def row(measure: str, value: float, unit: str, target: str = "", ok: bool | None = None) -> Row:
    return Row(measure=measure, value=round(value, 2), unit=unit, target=target, ok=ok)


def print_rows(rows: list[Row]) -> None:
    print(f"{'measure':<58} {'value':>12} {'unit':<8} {'target':<14} verdict")
    for r in rows:
        verdict = "" if r["ok"] is None else ("PASS" if r["ok"] else "FAIL")
        print(f"{r['measure']:<58} {r['value']:>12,} {r['unit']:<8} {r['target']:<14} {verdict}")


async def admin(pg: str, statement: str, database: str = "postgres") -> None:
    conn = await asyncpg.connect(f"{pg}/{database}", timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(pg: str, prefix: str) -> AsyncIterator[str]:
    """Yields the SQLAlchemy URL of a fresh, migrated database."""
    from reservekit.migrate import upgrade_to_head_async

    name = f"{prefix}_{os.getpid()}"
    await admin(pg, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await admin(pg, f"CREATE DATABASE {name}")
    url = f"{pg.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    try:
        await upgrade_to_head_async(url)
        yield url
    finally:
        await admin(pg, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
