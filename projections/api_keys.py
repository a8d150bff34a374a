"""Every key's current lifecycle state, looked up by id (listings) or by hash (the auth middleware).

Status is not stored: ``expires_at`` (which a rotation sets to the grace end) is compared with the
clock at read time, so a key expires on time without an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, Text, case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from reservekit.clock import from_micros, to_micros
from reservekit.domain.events import (
    KeyCreated,
    KeyRevoked,
    KeyRotated,
    KeyUpdated,
    LeakReported,
    RecordedEvent,
)
from reservekit.domain.keys import KeyState
from reservekit.projecting.spec import Projection


class KeyTables(NamedTuple):
    keys: Table


def define(metadata: MetaData, suffix: str) -> KeyTables:
    name = f"proj_api_keys{suffix}"
    return KeyTables(
        Table(
            name,
            metadata,
            Column("key_id", String(64), primary_key=True),
            Column("account_id", String(64), nullable=False),
            Column("key_hash", String(64), nullable=False),
            Column("prefix", String(16), nullable=False),
            Column("last4", String(4), nullable=False),
            Column("name", String(200)),
            Column("domains", Text, nullable=False),
            Column("scopes", Text, nullable=False),
            Column("created_at_us", BigInteger, nullable=False),
            Column("expires_at_us", BigInteger),
            Column("revoked_at_us", BigInteger),
            Column("revoke_reason", String(200)),
            Column("rotated_from", String(64)),
            Column("rotated_to", String(64)),
            Column("version", BigInteger, nullable=False),
            Column("position", BigInteger, nullable=False),
            Index(f"ux_{name}_hash", "key_hash", unique=True),
            Index(f"ix_{name}_account", "account_id", "key_id"),
        )
    )


def _json(values: Sequence[str]) -> str:
    return msgspec.json.encode(list(values)).decode()


async def apply(conn: AsyncConnection, tables: KeyTables, batch: Sequence[RecordedEvent]) -> None:
    keys = tables.keys
    for recorded in batch:
        event = recorded.data
        moved = {"version": recorded.stream_version, "position": recorded.position}
        if isinstance(event, KeyCreated):
            await conn.execute(
                insert(keys).values(
                    key_id=event.key_id,
                    account_id=event.account_id,
                    key_hash=event.key_hash,
                    prefix=event.prefix,
                    last4=event.last4,
                    name=event.name,
                    domains=_json(event.domains),
                    scopes=_json(event.scopes),
                    created_at_us=to_micros(recorded.recorded_at),
                    expires_at_us=to_micros(event.expires_at) if event.expires_at else None,
                    rotated_from=event.rotated_from,
                    **moved,
                )
            )
        elif isinstance(event, KeyRevoked | LeakReported):
            reason = event.reason if isinstance(event, KeyRevoked) else "leak reported"
            await conn.execute(
                update(keys)
                .where(keys.c.key_id == event.key_id, keys.c.revoked_at_us.is_(None))
                .values(revoked_at_us=to_micros(recorded.recorded_at), revoke_reason=reason, **moved)
            )
        elif isinstance(event, KeyRotated):
            grace_end = to_micros(event.grace_ends_at)
            earliest = case((keys.c.expires_at_us < grace_end, keys.c.expires_at_us), else_=grace_end)
            await conn.execute(
                update(keys)
                .where(keys.c.key_id == event.key_id)
                .values(rotated_to=event.new_key_id, expires_at_us=earliest, **moved)
            )
        elif isinstance(event, KeyUpdated):
            await conn.execute(
                update(keys)
                .where(keys.c.key_id == event.key_id)
                .values(
                    name=event.name,
                    domains=_json(event.domains),
                    scopes=_json(event.scopes),
                    expires_at_us=to_micros(event.expires_at) if event.expires_at else None,
                    **moved,
                )
            )


PROJECTION = Projection(
    name="api_keys", version=1, define=define, apply=apply, description="key lifecycle state"
)


def row_to_state(row: Any) -> KeyState:
    m = row._mapping
    return KeyState(
        key_id=m["key_id"],
        account_id=m["account_id"],
        key_hash=m["key_hash"],
        prefix=m["prefix"],
        last4=m["last4"],
        name=m["name"],
        domains=tuple(msgspec.json.decode(m["domains"])),
        scopes=tuple(msgspec.json.decode(m["scopes"])),
        created_at=from_micros(m["created_at_us"]),
        expires_at=from_micros(m["expires_at_us"]) if m["expires_at_us"] is not None else None,
        revoked_at=from_micros(m["revoked_at_us"]) if m["revoked_at_us"] is not None else None,
        revoke_reason=m["revoke_reason"],
        rotated_from=m["rotated_from"],
        rotated_to=m["rotated_to"],
        version=int(m["version"]),
        position=int(m["position"]),
    )


async def list_for_account(
    conn: AsyncConnection, account_id: str, *, after: str | None = None, limit: int = 50
) -> list[KeyState]:
    """Keys of one account in id order; ``after`` is the last id of the previous page (cursor)."""
    keys = PROJECTION.live.keys
    query = select(keys).where(keys.c.account_id == account_id)
    if after:
        query = query.where(keys.c.key_id > after)
    result = await conn.execute(query.order_by(keys.c.key_id).limit(limit))
    return [row_to_state(row) for row in result]
