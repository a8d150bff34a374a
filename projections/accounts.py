"""Accounts and their current plan, for listings and for the rate limiter's plan lookups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Boolean, Column, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from projections._upsert import upsert_many
from reservekit.clock import from_micros, to_micros
from reservekit.domain.accounts import AccountState
from reservekit.domain.events import AccountOpened, AccountPlanChanged, RecordedEvent
from reservekit.projecting.spec import Projection


class AccountTables(NamedTuple):
    accounts: Table


def define(metadata: MetaData, suffix: str) -> AccountTables:
    return AccountTables(
        Table(
            f"proj_accounts{suffix}",
            metadata,
            Column("account_id", String(64), primary_key=True),
            Column("name", String(200), nullable=False),
            Column("plan", String(64), nullable=False),
            Column("operator", Boolean, nullable=False),
            Column("opened_at_us", BigInteger, nullable=False),
            Column("position", BigInteger, nullable=False),
        )
    )


async def apply(conn: AsyncConnection, tables: AccountTables, batch: Sequence[RecordedEvent]) -> None:
    """Fold the batch into one row per touched account, then one upsert (see ``api_keys.apply``)."""
    accounts = tables.accounts
    opened = {r.data.account_id for r in batch if isinstance(r.data, AccountOpened)}
    earlier = {r.data.account_id for r in batch if isinstance(r.data, AccountPlanChanged)} - opened
    rows: dict[str, dict[str, Any]] = {}
    if earlier:
        result = await conn.execute(select(accounts).where(accounts.c.account_id.in_(sorted(earlier))))
        rows = {row.account_id: dict(row._mapping) for row in result}
    changed: set[str] = set()
    for recorded in batch:
        event = recorded.data
        if isinstance(event, AccountOpened) and event.account_id not in rows:
            rows[event.account_id] = {
                "account_id": event.account_id,
                "name": event.name,
                "plan": event.plan,
                "operator": event.operator,
                "opened_at_us": to_micros(recorded.recorded_at),
                "position": recorded.position,
            }
            changed.add(event.account_id)
        elif isinstance(event, AccountPlanChanged) and event.account_id in rows:
            rows[event.account_id].update(plan=event.plan, position=recorded.position)
            changed.add(event.account_id)
    await upsert_many(
        conn,
        accounts,
        [rows[account_id] for account_id in sorted(changed)],
        conflict=("account_id",),
        set_=lambda excluded: {"plan": excluded.plan, "position": excluded.position},
    )


PROJECTION = Projection(
    name="accounts",
    version=1,
    define=define,
    apply=apply,
    description="accounts and plans",
    folds=(AccountOpened, AccountPlanChanged),
)


async def list_accounts(
    conn: AsyncConnection, *, after: str | None = None, limit: int = 50
) -> list[AccountState]:
    """Every account in id order; ``after`` is the last id of the previous page (cursor)."""
    accounts = PROJECTION.live.accounts
    query = select(accounts)
    if after:
        query = query.where(accounts.c.account_id > after)
    result = await conn.execute(query.order_by(accounts.c.account_id).limit(limit))
    return [
        AccountState(
            account_id=row.account_id,
            name=row.name,
            plan=row.plan,
            operator=row.operator,
            opened_at=from_micros(row.opened_at_us),
            version=0,  # a listing row, not a stream to append to
        )
        for row in result
    ]
