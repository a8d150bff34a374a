"""key_usage's fold as SQL: INSERT … SELECT … ON CONFLICT statements over a range of the usage log.

The rows never come to Python: each statement aggregates the range's rows inside the database and
upserts the aggregate, so a rebuild runs at the database's speed (docs/benchmarks.md, fifth pass) and a
live batch costs the serving process five or six statements and no per-row work. PostgreSQL and SQLite
(3.25+, for the window function) take the same statements but one: PostgreSQL writes the minute totals
and the hour peaks in one (INSERT inside WITH), SQLite in two. SQLite needs a WHERE clause in the SELECT
of an ``INSERT … SELECT … ON CONFLICT`` (its parser would read ``ON`` as a join's): each of its
statements has one, some only for that reason.

Statements are built once per set of tables (building one costs more than running it on a small batch).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Executable,
    Insert,
    Select,
    String,
    and_,
    bindparam,
    func,
    literal_column,
    select,
    tuple_,
    union_all,
)

from projections._upsert import upsert_statement
from reservekit.clock import HOUR_US, MINUTE_US
from reservekit.usage.records import usage_log

if TYPE_CHECKING:
    from projections.key_usage import KeyUsageTables

_log = usage_log.c
KEY_SCOPE, ACCOUNT_SCOPE = "key:", "account:"
"""Prefixes of the minute totals' and hour peaks' ``scope``: ``key:<key id>``, ``account:<account id>``."""


def _range(*, bounded: bool) -> ColumnElement[bool]:
    """The rows the fold reads: positions (after, through], naming a key."""
    where = and_(
        _log.position > bindparam("after", type_=BigInteger),
        _log.position <= bindparam("through", type_=BigInteger),
        _log.key_id.is_not(None),
    )
    if bounded:
        where = and_(
            where,
            _log.recorded_at_us >= bindparam("recorded_from", type_=BigInteger),
            _log.recorded_at_us <= bindparam("recorded_until", type_=BigInteger),
        )
    return where


def _floor(column: ColumnElement[int], width_us: int) -> ColumnElement[int]:
    """``column`` rounded down to a multiple of ``width_us`` (SQL's % truncates toward zero, Python's
    floors; the two agree for instants after 1970, which is every instant the clock gives)."""
    width = literal_column(str(width_us), BigInteger)
    return column - column % width


def _text(value: str) -> ColumnElement[str]:
    # Inline, not a bind parameter: PostgreSQL cannot infer the type of a parameter concatenated to one.
    return literal_column(f"'{value}'", String)


Lane = tuple[Executable, ...]


@functools.lru_cache(maxsize=16)
def fold_statements(dialect: str, tables: KeyUsageTables, *, bounded: bool) -> tuple[Lane, Lane]:
    """The statements in two lanes that write disjoint tables: the counts, last use and first seen; the
    minute totals and hour peaks. Within a lane, in the order they must run (the hour peaks read the
    minute totals just written); the lanes may run in either order, or side by side."""
    where = _range(bounded=bounded)

    def upsert(
        table: Any,
        rows: Select[Any],
        conflict: tuple[str, ...],
        set_: Callable[[Any], dict[str, Any]],
        *,
        where: Callable[[Any], ColumnElement[bool]] | None = None,
    ) -> Insert:
        return upsert_statement(dialect, table, rows, conflict=conflict, set_=set_, where=where)

    minutes, activity, first_seen, hours, minute_totals, hour_peaks = tables

    def counts(table: Any, width_us: int, bucket: str) -> Insert:
        per_row = select(
            _log.key_id.label("key_id"), _floor(_log.occurred_at_us, width_us).label(bucket), _log.outcome
        ).where(where)
        rows = per_row.subquery("rows")
        grouped = (
            select(rows.c.key_id, rows.c[bucket], rows.c.outcome, func.count().label("count"))
            .where(rows.c.key_id.is_not(None))
            .group_by(rows.c.key_id, rows.c[bucket], rows.c.outcome)
            .order_by(rows.c.key_id, rows.c[bucket], rows.c.outcome)
        )
        return upsert(
            table,
            grouped,
            ("key_id", bucket, "outcome"),
            lambda excluded: {"count": table.c.count + excluded.count},
        )

    scope_minutes = union_all(
        select(
            (_text(KEY_SCOPE) + _log.key_id).label("scope"),
            _floor(_log.occurred_at_us, MINUTE_US).label("minute_us"),
        ).where(where),
        select(
            (_text(ACCOUNT_SCOPE) + _log.account_id).label("scope"),
            _floor(_log.occurred_at_us, MINUTE_US).label("minute_us"),
        ).where(where, _log.account_id.is_not(None)),
    ).subquery("scope_minutes")
    totals = upsert(
        minute_totals,
        select(scope_minutes.c.scope, scope_minutes.c.minute_us, func.count().label("count"))
        .where(scope_minutes.c.scope.is_not(None))
        .group_by(scope_minutes.c.scope, scope_minutes.c.minute_us)
        .order_by(scope_minutes.c.scope, scope_minutes.c.minute_us),
        ("scope", "minute_us"),
        lambda excluded: {"count": minute_totals.c.count + excluded.count},
    )
    # The hour's busiest minute is GREATEST(stored peak, the touched minutes' new totals): exact whatever
    # the batch boundaries. PostgreSQL takes the new totals from the upsert's RETURNING (one statement,
    # the range read once); SQLite has no INSERT inside WITH, so it reads the touched minutes back.
    if dialect == "postgresql":
        written = totals.returning(minute_totals.c.scope, minute_totals.c.minute_us, minute_totals.c.count)
        new_totals: Any = written.cte("new_totals")
        fold_totals: Lane = ()
        touched_filter = None
    else:
        new_totals = minute_totals
        fold_totals = (totals,)
        touched_filter = tuple_(minute_totals.c.scope, minute_totals.c.minute_us).in_(
            select(scope_minutes.c.scope, scope_minutes.c.minute_us)
        )
    hour = _floor(new_totals.c.minute_us, HOUR_US)
    peak_rows = select(new_totals.c.scope, hour.label("hour_us"), func.max(new_totals.c.count).label("peak"))
    if touched_filter is not None:
        peak_rows = peak_rows.where(touched_filter)
    peaks = upsert(
        hour_peaks,
        peak_rows.group_by(new_totals.c.scope, hour).order_by(new_totals.c.scope, hour),
        ("scope", "hour_us"),
        lambda excluded: {"peak": excluded.peak},
        where=lambda excluded: excluded.peak > hour_peaks.c.peak,
    )
    # A key's last use is its row with the greatest (occurred_at_us, position); a tie on the instant goes
    # to the later position, so to the later batch.
    ranked = (
        select(
            _log.key_id,
            _log.account_id,
            _log.occurred_at_us,
            _log.client_ip,
            _log.origin,
            func.row_number()
            .over(partition_by=_log.key_id, order_by=(_log.occurred_at_us.desc(), _log.position.desc()))
            .label("rank"),
        )
        .where(where)
        .subquery("ranked")
    )
    last = upsert(
        activity,
        select(
            ranked.c.key_id,
            ranked.c.account_id,
            ranked.c.occurred_at_us.label("last_used_at_us"),
            ranked.c.client_ip.label("last_ip"),
            ranked.c.origin.label("last_origin"),
        ).where(ranked.c.rank == literal_column("1")),
        ("key_id",),
        lambda excluded: {
            "account_id": excluded.account_id,
            "last_used_at_us": excluded.last_used_at_us,
            "last_ip": excluded.last_ip,
            "last_origin": excluded.last_origin,
        },
        where=lambda excluded: excluded.last_used_at_us >= activity.c.last_used_at_us,
    )
    seen = union_all(
        select(
            _log.key_id, _text("ip").label("kind"), _log.client_ip.label("value"), _log.occurred_at_us
        ).where(where),
        select(
            _log.key_id, _text("origin").label("kind"), _log.origin.label("value"), _log.occurred_at_us
        ).where(where, _log.origin.is_not(None)),
    ).subquery("seen")
    first = upsert(
        first_seen,
        select(
            seen.c.key_id, seen.c.kind, seen.c.value, func.min(seen.c.occurred_at_us).label("first_seen_us")
        )
        .where(seen.c.key_id.is_not(None))
        .group_by(seen.c.key_id, seen.c.kind, seen.c.value)
        .order_by(seen.c.key_id, seen.c.kind, seen.c.value),
        ("key_id", "kind", "value"),
        lambda excluded: {"first_seen_us": excluded.first_seen_us},
        where=lambda excluded: excluded.first_seen_us < first_seen.c.first_seen_us,
    )
    return (
        (counts(minutes, MINUTE_US, "minute_us"), counts(hours, HOUR_US, "hour_us"), last, first),
        (*fold_totals, peaks),
    )
