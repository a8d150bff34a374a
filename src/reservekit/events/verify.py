"""Recompute the hash chain from the first event and name the first position that does not hold."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from sqlalchemy import RowMapping, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.db import read_transaction
from reservekit.events.chain import GENESIS_HASH, row_hash
from reservekit.events.tables import events


class ChainReport(msgspec.Struct, frozen=True):
    ok: bool
    count: int
    head_position: int
    head_hash: str
    first_bad_position: int | None = None
    reason: str | None = None


async def verify_chain(
    engine: AsyncEngine, *, batch_size: int = 5000, progress: Callable[[int, int], None] | None = None
) -> ChainReport:
    expected_position, prev_hash, count = 1, GENESIS_HASH, 0
    async with read_transaction(engine) as conn:
        total = int(await conn.scalar(select(func.count()).select_from(events)) or 0)
        after = 0
        while True:
            rows = (
                await conn.execute(
                    select(events)
                    .where(events.c.position > after)
                    .order_by(events.c.position)
                    .limit(batch_size)
                )
            ).all()
            if not rows:
                break
            for row in rows:
                problem = _check(row._mapping, expected_position, prev_hash)
                if problem:
                    return ChainReport(
                        False, count, expected_position - 1, prev_hash, expected_position, problem
                    )
                prev_hash = str(row.hash)
                expected_position += 1
                count += 1
            after = int(rows[-1].position)
            if progress:
                progress(count, total)
    return ChainReport(True, count, expected_position - 1, prev_hash)


def _check(mapping: RowMapping, expected_position: int, prev_hash: str) -> str | None:
    position = int(mapping["position"])
    if position != expected_position:
        return f"position {expected_position} is missing (next stored is {position})"
    if mapping["prev_hash"] != prev_hash:
        return "prev_hash does not match the previous event's hash"
    try:
        recomputed = row_hash(prev_hash, mapping)
    except msgspec.DecodeError:
        return "stored event is not valid JSON"
    if recomputed != mapping["hash"]:
        return "hash does not match the event's contents"
    if msgspec.json.decode(mapping["data"]).get("account_id") != mapping["account_id"]:
        return "account_id column does not match the event's data"
    return None
