"""Set-based projections (api_keys, accounts, webhook_outbox) give the same rows however the log is cut.

The live runner applies small batches, a rebuild large ones; the fold in Python must agree with
event-at-a-time application, including a key revoked, rotated or edited in a later batch than the one
that created it, a second revocation (the first one's reason stays), and events for an unknown key.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import projections as registry
from projections import api_keys
from reservekit.clock import SystemClock
from reservekit.db import read_transaction, write_transaction
from reservekit.domain.events import (
    AccountOpened,
    AccountPlanChanged,
    KeyCreated,
    KeyRevoked,
    KeyRotated,
    KeyUpdated,
    LeakReported,
    Metadata,
)
from reservekit.events.store import SqlEventStore, StreamWrite
from reservekit.projecting import rebuild
from reservekit.projecting.rebuild import (
    diff_snapshots,
    drop_tables,
    rebuild_into,
    snapshot,
    verify_projection,
)
from reservekit.projecting.runner import catch_up, ensure_projection
from reservekit.settings import Settings

META = Metadata(source="test")
GRACE = datetime(2031, 1, 1, tzinfo=UTC)


def created(key_id: str, *, expires: datetime | None = None, rotated_from: str | None = None) -> KeyCreated:
    return KeyCreated(key_id=key_id, account_id="acct_a", key_hash=key_id.ljust(64, "0"), prefix="sk_rsv_",
                      last4="abcd", name=key_id, scopes=("services:read",), expires_at=expires,
                      rotated_from=rotated_from)  # fmt: skip


async def write_lives(store: SqlEventStore) -> None:
    appends = [
        [("acct_a", 0, [AccountOpened(account_id="acct_a", name="A", plan="free")])],
        [
            ("key_1", 0, [created("key_1")]),
            ("key_2", 0, [created("key_2", expires=datetime(2030, 1, 1, tzinfo=UTC))]),
        ],
        [("acct_a", 1, [AccountPlanChanged(account_id="acct_a", plan="pro")])],
        [("key_1", 1, [KeyRevoked(key_id="key_1", account_id="acct_a", reason="first")])],
        [("key_1", 2, [KeyRevoked(key_id="key_1", account_id="acct_a", reason="second")])],
        [
            (
                "key_2",
                1,
                [KeyRotated(key_id="key_2", account_id="acct_a", new_key_id="key_3", grace_ends_at=GRACE)],
            ),
            ("key_3", 0, [created("key_3", rotated_from="key_2")]),
        ],
        [
            (
                "key_3",
                1,
                [
                    KeyUpdated(key_id="key_3", account_id="acct_a", name="edited", domains=("a.example",)),
                    LeakReported(key_id="key_3", account_id="acct_a", source="paste"),
                ],
            )
        ],
        [("key_x", 0, [KeyRevoked(key_id="key_x", account_id="acct_a", reason="unknown key")])],
        [
            (
                "key_4",
                0,
                [
                    created("key_4"),
                    KeyRotated(key_id="key_4", account_id="acct_a", new_key_id="key_5", grace_ends_at=GRACE),
                ],
            )
        ],
    ]
    for writes in appends:
        await store.append([StreamWrite(s, v, events) for s, v, events in writes], META)


@pytest.mark.parametrize("name", ["api_keys", "accounts", "webhook_outbox"])
async def test_one_event_batches_and_one_whole_batch_build_the_same_rows(
    store: SqlEventStore, engine: AsyncEngine, name: str
) -> None:
    await write_lives(store)
    projection = registry.by_name(registry.build_all(Settings()), name)
    await rebuild_into(engine, projection, suffix="__one", batch_size=1)
    await rebuild_into(engine, projection, suffix="__all", batch_size=10_000)
    async with read_transaction(engine) as conn:
        one = await snapshot(conn, projection.tables("__one"))
        whole = await snapshot(conn, projection.tables("__all"))
    assert diff_snapshots(one, whole) == []
    assert any(one.values())
    await drop_tables(engine, projection.tables("__one"))
    await drop_tables(engine, projection.tables("__all"))


@pytest.mark.parametrize("max_keys", [200_000, 2], ids=["held-to-the-end", "forgotten-past-2-keys"])
async def test_a_rebuild_holding_the_keys_in_memory_writes_what_the_live_batches_did(
    store: SqlEventStore, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, max_keys: int
) -> None:
    """A rebuild of api_keys folds with ``Replay`` (nothing read back, one COPY at the end); the live
    runner with ``apply``, reading back and upserting per batch. Both must give the same rows, also
    when the replay outgrows its bound half way and goes on as ``apply``."""
    await write_lives(store)
    projection = registry.by_name(registry.build_all(Settings()), "api_keys")
    async with write_transaction(engine) as conn:
        await ensure_projection(conn, projection, SystemClock())
    await catch_up(engine, projection, batch_size=1)
    monkeypatch.setattr(api_keys.Replay, "MAX_KEYS", max_keys)
    monkeypatch.setattr(rebuild, "DEFAULT_BATCH_SIZE", 2)
    result = await verify_projection(engine, projection)
    assert result.differences == ()
    async with read_transaction(engine) as conn:
        live = await snapshot(conn, projection.live)
    assert len(live["proj_api_keys"]) == 4  # key_1 to key_4; key_x never existed


async def test_the_fold_keeps_the_first_revocation_and_the_earlier_expiry(
    store: SqlEventStore, engine: AsyncEngine
) -> None:
    await write_lives(store)
    projection = registry.by_name(registry.build_all(Settings()), "api_keys")
    await rebuild_into(engine, projection, suffix="__all")
    async with read_transaction(engine) as conn:
        rows = {row[0]: row for row in (await snapshot(conn, projection.tables("__all")))["proj_api_keys"]}
    columns = [c.name for c in projection.tables("__all")[0].columns]
    key_1 = dict(zip(columns, rows["key_1"], strict=True))
    key_2 = dict(zip(columns, rows["key_2"], strict=True))
    key_3 = dict(zip(columns, rows["key_3"], strict=True))
    key_4 = dict(zip(columns, rows["key_4"], strict=True))
    assert (key_1["revoke_reason"], key_1["version"]) == ("first", 2)
    assert key_2["rotated_to"] == "key_3"
    assert key_2["expires_at_us"] == int(datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    assert key_4["expires_at_us"] == int(GRACE.timestamp() * 1_000_000)
    assert (key_3["name"], key_3["domains"], key_3["revoke_reason"]) == (
        "edited",
        '["a.example"]',
        "leak reported",
    )
    assert "key_x" not in rows
    await drop_tables(engine, projection.tables("__all"))
