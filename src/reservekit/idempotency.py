"""Idempotency-Key records (IETF httpapi idempotency-key draft), kept in the database for every replica.

A caller's first POST with a key claims the row (the primary key makes two claims impossible); its
answer is stored when it completes, minus any ``secret`` (a secret is shown once and never stored);
a retry within 24 hours replays that answer. A claim whose request failed with a 5xx is released, so
the retry runs again.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.clock import DAY_US
from reservekit.db import read_transaction, write_transaction

RETENTION_US = DAY_US

metadata = MetaData()
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(80), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer),
    Column("content_type", String(100)),
    Column("location", String(300)),
    Column("body", LargeBinary),
    Column("created_at_us", BigInteger, nullable=False),
)


class Stored(msgspec.Struct, frozen=True):
    """A claim found: still in progress (``status`` None) or a finished answer to replay."""

    fingerprint: str
    status: int | None
    content_type: str | None
    location: str | None
    body: bytes | None


async def claim(engine: AsyncEngine, scope: str, key: str, fingerprint: str, now_us: int) -> Stored | None:
    """Claim (scope, key) for a new request: None when claimed, else what an earlier request left."""
    for _ in range(2):
        try:
            async with write_transaction(engine) as conn:
                await conn.execute(
                    insert(idempotency_keys).values(
                        scope=scope, key=key, fingerprint=fingerprint, created_at_us=now_us
                    )
                )
            return None
        except IntegrityError:
            pass
        async with read_transaction(engine) as conn:
            row = (
                await conn.execute(
                    select(idempotency_keys).where(
                        idempotency_keys.c.scope == scope, idempotency_keys.c.key == key
                    )
                )
            ).first()
        if row is None:  # released between our insert and this read: claim again
            continue
        if row.created_at_us > now_us - RETENTION_US:
            return Stored(row.fingerprint, row.status, row.content_type, row.location, row.body)
        await release(engine, scope, key)  # expired: the key may be used afresh
    raise RuntimeError("idempotency claim kept changing under us")  # pragma: no cover - two races in a row


async def complete(
    engine: AsyncEngine,
    scope: str,
    key: str,
    status: int,
    content_type: str | None,
    location: str | None,
    body: bytes,
) -> None:
    async with write_transaction(engine) as conn:
        await conn.execute(
            idempotency_keys.update()
            .where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
            .values(status=status, content_type=content_type, location=location, body=without_secrets(body))
        )


async def release(engine: AsyncEngine, scope: str, key: str) -> None:
    async with write_transaction(engine) as conn:
        await conn.execute(
            delete(idempotency_keys).where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
        )


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "secret"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def without_secrets(body: bytes) -> bytes:
    """The stored copy of an answer: every ``secret`` field removed, wherever it is."""
    try:
        return msgspec.json.encode(_strip(msgspec.json.decode(body)))
    except msgspec.DecodeError:
        return body
