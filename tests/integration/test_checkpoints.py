"""Signed checkpoints catch what the chain alone cannot: a truncated or re-chained log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.audit.checkpoint import (
    CheckpointError,
    check_against_log,
    load_or_create_signing_key,
    read_checkpoint,
    sign_checkpoint,
)
from reservekit.domain.events import AccountOpened, Metadata
from reservekit.events.store import SqlEventStore, StreamWrite
from reservekit.events.verify import verify_chain

NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def open_accounts(store: SqlEventStore, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        event = AccountOpened(account_id=f"acct_{i}", name="n", plan="free")
        await store.append([StreamWrite(f"acct_{i}", 0, [event])], Metadata())


async def write_checkpoint(engine: AsyncEngine, tmp_path: Path) -> Path:
    key = load_or_create_signing_key(tmp_path / "signing.pem")
    assert (tmp_path / "signing.pem").stat().st_mode & 0o777 == 0o600
    checkpoint = sign_checkpoint(await verify_chain(engine), key, NOW)
    path = tmp_path / "head.json"
    path.write_bytes(msgspec.json.encode(checkpoint))
    return path


async def test_a_growing_log_still_holds_its_checkpoint(
    store: SqlEventStore, engine: AsyncEngine, tmp_path: Path
) -> None:
    await open_accounts(store, 3)
    path = await write_checkpoint(engine, tmp_path)
    await open_accounts(store, 2, start=3)
    assert await check_against_log(engine, read_checkpoint(path)) is None


async def test_a_truncated_log_is_caught(store: SqlEventStore, engine: AsyncEngine, tmp_path: Path) -> None:
    await open_accounts(store, 3)
    path = await write_checkpoint(engine, tmp_path)
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(text("DROP TRIGGER events_no_delete"))
        else:
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
        await conn.execute(text("DELETE FROM events WHERE position = 3"))
    # The shortened chain is still internally consistent: only the checkpoint shows the loss.
    assert (await verify_chain(engine)).ok
    problem = await check_against_log(engine, read_checkpoint(path))
    assert problem is not None
    assert "truncated" in problem


async def test_a_rechained_log_is_caught(store: SqlEventStore, engine: AsyncEngine, tmp_path: Path) -> None:
    await open_accounts(store, 2)
    path = await write_checkpoint(engine, tmp_path)
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(text("DROP TRIGGER events_no_update"))
        else:
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
        await conn.execute(text("UPDATE events SET hash = 'ff' || substr(hash, 3) WHERE position = 2"))
    problem = await check_against_log(engine, read_checkpoint(path))
    assert problem is not None
    assert "rewritten" in problem


async def test_an_edited_or_re_signed_checkpoint_is_refused(
    store: SqlEventStore, engine: AsyncEngine, tmp_path: Path
) -> None:
    await open_accounts(store, 2)
    path = await write_checkpoint(engine, tmp_path)
    genuine = read_checkpoint(path)
    edited = tmp_path / "edited.json"
    edited.write_bytes(path.read_bytes().replace(b'"position":2', b'"position":1'))
    with pytest.raises(CheckpointError, match="signature"):
        read_checkpoint(edited)
    forger = load_or_create_signing_key(tmp_path / "forger.pem")
    forged = tmp_path / "forged.json"
    forged.write_bytes(msgspec.json.encode(sign_checkpoint(await verify_chain(engine), forger, NOW)))
    with pytest.raises(CheckpointError, match="different key"):
        read_checkpoint(forged, trusted_public_key=genuine.public_key)
