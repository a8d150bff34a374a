"""Every key's current lifecycle state, looked up by id (listings) or by hash (the auth middleware).

Status is not stored: ``expires_at`` (which a rotation sets to the grace end) is compared with the
clock at read time, so a key expires on time without an event.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from projections._upsert import insert_many, upsert_many
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


_COLUMNS = (
    "key_id",
    "account_id",
    "key_hash",
    "prefix",
    "last4",
    "name",
    "domains",
    "scopes",
    "created_at_us",
    "expires_at_us",
    "revoked_at_us",
    "revoke_reason",
    "rotated_from",
    "rotated_to",
    "version",
    "position",
)


async def apply(conn: AsyncConnection, tables: KeyTables, batch: Sequence[RecordedEvent]) -> None:
    """Fold the batch into one row per touched key in Python, then write them with one upsert.

    A key created in an earlier batch is read first (one SELECT for all of them). Per-event statements
    made a rebuild cost one round trip per event; this costs two per batch, whatever its length.
    """
    keys = tables.keys
    touched = {key_id for recorded in batch if (key_id := _key_of(recorded.data)) is not None}
    if not touched:
        return
    created_here = {r.data.key_id for r in batch if isinstance(r.data, KeyCreated)}
    rows: dict[str, dict[str, Any]] = {}
    earlier = touched - created_here
    if earlier:
        result = await conn.execute(select(keys).where(keys.c.key_id.in_(sorted(earlier))))
        rows = {row.key_id: dict(row._mapping) for row in result}
    changed: set[str] = set()
    for recorded in batch:
        if fold(rows, recorded):
            changed.add(str(_key_of(recorded.data)))
    await upsert_many(
        conn,
        keys,
        [rows[key_id] for key_id in sorted(changed)],
        conflict=("key_id",),
        set_=lambda excluded: {name: getattr(excluded, name) for name in _COLUMNS if name != "key_id"},
    )


def _key_of(event: object) -> str | None:
    # The classes are final in practice (frozen msgspec structs): a set lookup, not an isinstance chain.
    if type(event) in _KEY_EVENTS:
        key_id: str = event.key_id  # type: ignore[attr-defined]
        return key_id
    return None


def fold(rows: dict[str, dict[str, Any]], recorded: RecordedEvent) -> bool:
    """Apply one event to the in-memory rows; True when a row changed.

    The rules are the ones the per-event statements had: a revocation keeps the first one's time and
    reason, a rotation only ever brings the expiry earlier, and events for an unknown key change nothing.
    """
    event = recorded.data
    moved = {"version": recorded.stream_version, "position": recorded.position}
    if isinstance(event, KeyCreated):
        if event.key_id in rows:  # the unique key would have refused the insert
            return False
        rows[event.key_id] = {
            "key_id": event.key_id,
            "account_id": event.account_id,
            "key_hash": event.key_hash,
            "prefix": event.prefix,
            "last4": event.last4,
            "name": event.name,
            "domains": _json(event.domains),
            "scopes": _json(event.scopes),
            "created_at_us": to_micros(recorded.recorded_at),
            "expires_at_us": to_micros(event.expires_at) if event.expires_at else None,
            "revoked_at_us": None,
            "revoke_reason": None,
            "rotated_from": event.rotated_from,
            "rotated_to": None,
            **moved,
        }
        return True
    key_id = _key_of(event)
    row = rows.get(key_id) if key_id is not None else None
    if row is None:
        return False
    if isinstance(event, KeyRevoked | LeakReported):
        if row["revoked_at_us"] is not None:
            return False
        reason = event.reason if isinstance(event, KeyRevoked) else "leak reported"
        row.update(revoked_at_us=to_micros(recorded.recorded_at), revoke_reason=reason, **moved)
    elif isinstance(event, KeyRotated):
        grace_end = to_micros(event.grace_ends_at)
        current = row["expires_at_us"]
        earliest = current if current is not None and current < grace_end else grace_end
        row.update(rotated_to=event.new_key_id, expires_at_us=earliest, **moved)
    elif isinstance(event, KeyUpdated):
        row.update(
            name=event.name,
            domains=_json(event.domains),
            scopes=_json(event.scopes),
            expires_at_us=to_micros(event.expires_at) if event.expires_at else None,
            **moved,
        )
    return True


class Replay:
    """api_keys through one rebuild: every key's row stays in memory until the end, then goes in by COPY.

    ``apply`` reads back the keys a batch touches that earlier batches created, and upserts every
    touched key again in each batch. A rebuild's table holds only what this replay wrote, so it reads
    nothing, and writes each key once (plain inserts into the fresh table). Past ``MAX_KEYS`` held
    keys it writes them, forgets them, and goes on as ``apply`` does, so memory stays bounded.
    """

    MAX_KEYS = 200_000

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] | None = {}

    async def apply(self, conn: AsyncConnection, tables: KeyTables, batch: Sequence[RecordedEvent]) -> None:
        rows = self._rows
        if rows is None:
            await apply(conn, tables, batch)
            return
        for recorded in batch:
            fold(rows, recorded)
        if len(rows) > self.MAX_KEYS:
            await self.finish(conn, tables)
            self._rows = None

    async def finish(self, conn: AsyncConnection, tables: KeyTables) -> None:
        if self._rows:
            held = list(map(_IN_COLUMN_ORDER, self._rows.values()))
            await insert_many(conn, tables.keys, _COLUMNS, held)
            self._rows = {}


_FOLDS = (KeyCreated, KeyRevoked, LeakReported, KeyRotated, KeyUpdated)
_KEY_EVENTS = frozenset(_FOLDS)
_IN_COLUMN_ORDER = operator.itemgetter(*_COLUMNS)


PROJECTION = Projection(
    name="api_keys",
    version=1,
    define=define,
    apply=apply,
    replay=Replay,
    description="key lifecycle state",
    folds=_FOLDS,
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
