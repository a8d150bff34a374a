"""Recompute the hash chain from the first event and name the first position that does not hold.

Verification is read-only (the database refuses writes in its transaction) and treats every stored
value as attacker-controlled: any row it cannot read back — a moved position, a NULL, non-JSON data, a
non-hex hash — is reported as the first bad position, never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy import RowMapping, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.db import read_only_transaction
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
    async with read_only_transaction(engine) as conn:
        total = int(await conn.scalar(select(func.count()).select_from(events)) or 0)
        after: int | None = None  # the first batch has no lower bound: a row moved to 0 or below is seen
        while True:
            query = select(events).order_by(events.c.position).limit(batch_size)
            if after is not None:
                query = query.where(events.c.position > after)
            rows = (await conn.execute(query)).all()
            if not rows:
                break
            for row in rows:
                problem = check_row(row._mapping, expected_position, prev_hash)
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


def check_row(mapping: RowMapping, expected_position: int, prev_hash: str) -> str | None:
    """Why the stored row at ``expected_position`` breaks the chain, or None when it holds."""
    position = mapping["position"]
    if position != expected_position:
        return f"position {expected_position} is missing (next stored is {position})"
    if mapping["prev_hash"] != prev_hash:
        return "prev_hash does not match the previous event's hash"
    try:
        recomputed = row_hash(prev_hash, mapping)
    except msgspec.DecodeError:
        return "stored event is not valid JSON"
    except (TypeError, ValueError, KeyError) as exc:
        return f"stored event cannot be read: {exc}"
    if recomputed != mapping["hash"]:
        return "hash does not match the event's contents"
    data: Any = msgspec.json.decode(mapping["data"])
    if not isinstance(data, dict) or data.get("account_id") != mapping["account_id"]:
        return "account_id column does not match the event's data"
    return None
