"""Scheduling services: the resource the keys protect. Plain rows, always filtered by account."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.clock import from_micros, to_micros
from reservekit.db import Read, fetch_all, write_transaction
from reservekit.domain.errors import NotFound
from reservekit.ids import new_id
from reservekit.redaction import redact, redact_optional

metadata = MetaData()
services = Table(
    "services",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("description", Text),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
)


class Service(msgspec.Struct, kw_only=True):
    id: str
    name: str
    duration_minutes: int
    description: str | None
    created_at: datetime
    updated_at: datetime


def _service(row: Sequence[Any]) -> Service:
    """A row of ``_COLUMNS``, in that order."""
    service_id, name, duration_minutes, description, created_at_us, updated_at_us = row
    return Service(
        id=service_id,
        name=name,
        duration_minutes=duration_minutes,
        description=description,
        created_at=from_micros(created_at_us),
        updated_at=from_micros(updated_at_us),
    )


_COLUMNS = (
    services.c.id,
    services.c.name,
    services.c.duration_minutes,
    services.c.description,
    services.c.created_at_us,
    services.c.updated_at_us,
)
_OF_ACCOUNT = services.c.account_id == bindparam("account_id")
_LIMIT = bindparam("limit", type_=Integer)
# The hot reads, compiled once per dialect (db.Read): one round trip each, no transaction.
_FIRST_PAGE = Read(select(*_COLUMNS).where(_OF_ACCOUNT).order_by(services.c.id).limit(_LIMIT))
_NEXT_PAGE = Read(
    select(*_COLUMNS)
    .where(_OF_ACCOUNT, services.c.id > bindparam("after"))
    .order_by(services.c.id)
    .limit(_LIMIT)
)
_ONE = Read(select(*_COLUMNS).where(_OF_ACCOUNT, services.c.id == bindparam("service_id")))


async def list_services(
    engine: AsyncEngine, account_id: str, *, after: str | None, limit: int
) -> list[Service]:
    if after:
        rows = await fetch_all(engine, _NEXT_PAGE, {"account_id": account_id, "after": after, "limit": limit})
    else:
        rows = await fetch_all(engine, _FIRST_PAGE, {"account_id": account_id, "limit": limit})
    return [_service(row) for row in rows]


async def get_service(engine: AsyncEngine, account_id: str, service_id: str) -> Service:
    rows = await fetch_all(engine, _ONE, {"account_id": account_id, "service_id": service_id})
    if not rows:
        raise NotFound(f"service {service_id} not found", field="id")
    return _service(rows[0])


async def create_service(
    engine: AsyncEngine,
    account_id: str,
    *,
    name: str,
    duration_minutes: int,
    description: str | None,
    now: datetime,
) -> Service:
    service_id = new_id("svc")
    stamp = to_micros(now)
    name, description = redact(name), redact_optional(description)
    async with write_transaction(engine) as conn:
        await conn.execute(
            insert(services).values(
                id=service_id,
                account_id=account_id,
                name=name,
                duration_minutes=duration_minutes,
                description=description,
                created_at_us=stamp,
                updated_at_us=stamp,
            )
        )
    return Service(
        id=service_id,
        name=name,
        duration_minutes=duration_minutes,
        description=description,
        created_at=now,
        updated_at=now,
    )


async def update_service(
    engine: AsyncEngine, account_id: str, service_id: str, changes: dict[str, object], now: datetime
) -> Service:
    changes = {k: redact(v) if isinstance(v, str) else v for k, v in changes.items()}
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            update(services)
            .where(services.c.id == service_id, services.c.account_id == account_id)
            .values(**changes, updated_at_us=to_micros(now))
        )
        if result.rowcount == 0:
            raise NotFound(f"service {service_id} not found", field="id")
    return await get_service(engine, account_id, service_id)


async def delete_service(engine: AsyncEngine, account_id: str, service_id: str) -> None:
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            delete(services).where(services.c.id == service_id, services.c.account_id == account_id)
        )
        if result.rowcount == 0:
            raise NotFound(f"service {service_id} not found", field="id")
