"""The tamper suite: every way an attacker who can write the events table changes it is caught.

Each test populates a log of 30 events, goes around the append-only triggers in its own database (as a
table owner could) and checks that ``verify_chain`` names the exact first bad position, never raises,
and writes nothing. Truncation and a fully re-chained tail are invisible to the chain alone; the signed
checkpoint catches them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.audit.checkpoint import (
    check_against_log,
    load_or_create_signing_key,
    read_checkpoint,
    sign_checkpoint,
)
from reservekit.db import read_only_transaction
from reservekit.domain.events import AccountOpened, AccountPlanChanged, Metadata
from reservekit.events.chain import row_hash
from reservekit.events.store import SqlEventStore, StreamWrite
from reservekit.events.tables import events, projection_checkpoints
from reservekit.events.verify import verify_chain

LOG_LENGTH = 30
ROWS = (1, 2, 15, 27, LOG_LENGTH)  # first, second, middle, the 27, the head
META = Metadata(actor_account_id="acct_0", request_id="req_t", client_ip="198.51.100.7", user_agent="t")


async def populate(store: SqlEventStore) -> None:
    """30 events: accounts opened, and every fourth event a plan change of acct_0 (streams interleave)."""
    opened, plan_changes = 0, 0
    for i in range(LOG_LENGTH):
        if i % 4 == 3:
            change = AccountPlanChanged(account_id="acct_0", plan="pro" if plan_changes % 2 == 0 else "free")
            plan_changes += 1
            await store.append([StreamWrite("acct_0", plan_changes, [change])], META)
        else:
            account = f"acct_{opened}"
            opened += 1
            event = AccountOpened(account_id=account, name=f"n{opened}", plan="free")
            await store.append([StreamWrite(account, 0, [event])], META)


async def disable_append_only(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(text("DROP TRIGGER events_no_update"))
            await conn.execute(text("DROP TRIGGER events_no_delete"))
        else:
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))


async def snapshot(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(events).order_by(events.c.position))).all()
    return [dict(row._mapping) for row in rows]


async def restore(engine: AsyncEngine, rows: Sequence[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(events))
        await conn.execute(insert(events), list(rows))


@pytest.fixture
async def log(store: SqlEventStore, engine: AsyncEngine) -> list[dict[str, Any]]:
    await populate(store)
    original = await snapshot(engine)
    await disable_append_only(engine)
    return original


async def assert_caught(engine: AsyncEngine, position: int, case: str) -> None:
    before = await snapshot(engine)
    report = await verify_chain(engine, batch_size=7)  # batches that do not align with the rows
    assert (report.ok, report.first_bad_position) == (False, position), (case, report)
    assert report.count == position - 1, case
    assert report.reason, case
    assert await snapshot(engine) == before, f"{case}: verification wrote to the log"


# One edit per column; each must be caught at the edited row. ``None`` marks values SQL computes.
COLUMN_EDITS: dict[str, list[Any]] = {
    "position": ["+1000"],
    "stream_id": ["acct_forged"],
    "stream_version": ["+100"],
    "account_id": ["acct_forged"],
    "type": ["key_revoked"],
    "data": ["edit", "not json", "[1, 2]", '"text"', "{}"],
    "metadata": ['{"source":"forged"}', "not json", "{}"],
    "recorded_at_us": ["+1", "-1000000"],
    "prev_hash": ["f" * 64, "zz", ""],
    "hash": ["f" * 64, "0" * 64, "not hex"],
}


def edited(row: dict[str, Any], column: str, edit: Any) -> Any:
    if isinstance(edit, str) and edit[:1] in "+-" and edit[1:].isdigit():
        return int(row[column]) + int(edit)
    if edit == "edit":
        return row[column].replace('"name":"n', '"name":"forged n').replace('"plan":"', '"plan":"ent')
    return edit


async def test_an_edit_of_any_column_of_any_row_names_that_row(
    engine: AsyncEngine, log: list[dict[str, Any]]
) -> None:
    cases = 0
    for position in ROWS:
        row = log[position - 1]
        for column, edits in COLUMN_EDITS.items():
            for edit in edits:
                value = edited(row, column, edit)
                if value == row[column]:
                    continue
                async with engine.begin() as conn:
                    await conn.execute(
                        update(events).where(events.c.position == position).values({column: value})
                    )
                await assert_caught(engine, position, f"row {position} {column}={value!r}")
                await restore(engine, log)
                cases += 1
    assert cases >= len(ROWS) * 17
    assert (await verify_chain(engine)).ok


@pytest.mark.parametrize("moved_to", [0, -1, 31, 1000])
async def test_a_moved_position_is_named_without_a_traceback(
    engine: AsyncEngine, log: list[dict[str, Any]], moved_to: int
) -> None:
    for position in (1, 2, 27):
        async with engine.begin() as conn:
            await conn.execute(update(events).where(events.c.position == position).values(position=moved_to))
        # A row moved below 1 stands before position 1, so the log is bad from its very first position.
        await assert_caught(engine, 1 if moved_to < 1 else position, f"{position} -> {moved_to}")
        await restore(engine, log)


@pytest.mark.parametrize("position", ROWS)
async def test_a_deleted_row_is_named(engine: AsyncEngine, log: list[dict[str, Any]], position: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(events).where(events.c.position == position))
    if position == LOG_LENGTH:
        # Deleting the head is a truncation: the chain still holds, only a checkpoint shows it.
        assert (await verify_chain(engine)).ok
        return
    await assert_caught(engine, position, f"deleted {position}")


@pytest.mark.parametrize(("first", "second"), [(1, 2), (2, 3), (14, 15), (26, 27), (29, 30), (3, 20)])
async def test_swapped_rows_are_named_at_the_first(
    engine: AsyncEngine, log: list[dict[str, Any]], first: int, second: int
) -> None:
    async with engine.begin() as conn:
        for old, new in ((first, -9), (second, first), (-9, second)):
            await conn.execute(update(events).where(events.c.position == old).values(position=new))
    await assert_caught(engine, first, f"swapped {first} and {second}")


async def test_a_row_moved_to_the_end_is_named_where_it_was(
    engine: AsyncEngine, log: list[dict[str, Any]]
) -> None:
    """Reordering: row 5 taken out and put back after the head, every later row shifted down by one."""
    rows = [dict(r) for r in log]
    moved = rows.pop(4)
    reordered = [r | {"position": i} for i, r in enumerate([*rows, moved], start=1)]
    await restore(engine, reordered)
    await assert_caught(engine, 5, "row 5 moved to the end")


async def test_a_forged_event_appended_after_the_head_is_named(
    engine: AsyncEngine, log: list[dict[str, Any]]
) -> None:
    head = log[-1]
    forged = head | {"position": LOG_LENGTH + 1, "stream_version": 99, "prev_hash": head["hash"]}
    async with engine.begin() as conn:
        await conn.execute(insert(events).values(forged))
    await assert_caught(engine, LOG_LENGTH + 1, "forged append")


def rehash(row: dict[str, Any], prev_hash: str) -> str:
    """The hash an attacker recomputes for an edited row, with the writer's own function."""
    return row_hash(prev_hash, row)


@pytest.mark.parametrize("position", [1, 2, 15, 27])
async def test_rewriting_an_event_and_the_next_prev_hash_is_caught_at_the_next_row(
    engine: AsyncEngine, log: list[dict[str, Any]], position: int
) -> None:
    """T2: the attacker recomputes the edited row's hash and patches the next row's ``prev_hash``.

    Only the next row's own hash, which covers its ``prev_hash``, can catch this: a chain that hashed
    the envelope alone would verify clean here.
    """
    row = log[position - 1]
    forged = row | {"data": edited(row, "data", "edit")}
    assert forged["data"] != row["data"]
    forged_hash = rehash(forged, row["prev_hash"])
    async with engine.begin() as conn:
        await conn.execute(
            update(events).where(events.c.position == position).values(data=forged["data"], hash=forged_hash)
        )
        await conn.execute(
            update(events).where(events.c.position == position + 1).values(prev_hash=forged_hash)
        )
    await assert_caught(engine, position + 1, f"two-row rewrite at {position}")


async def sign(engine: AsyncEngine, tmp_path: Path) -> Path:
    key = load_or_create_signing_key(tmp_path / "signing.pem")
    checkpoint = sign_checkpoint(await verify_chain(engine), key, datetime(2026, 6, 1, tzinfo=UTC))
    path = tmp_path / "head.json"
    path.write_bytes(msgspec.json.encode(checkpoint))
    return path


@pytest.mark.parametrize("keep", [0, 1, 25, LOG_LENGTH - 1])
async def test_a_truncated_tail_is_caught_by_the_signed_checkpoint(
    engine: AsyncEngine, log: list[dict[str, Any]], tmp_path: Path, keep: int
) -> None:
    path = await sign(engine, tmp_path)
    async with engine.begin() as conn:
        await conn.execute(delete(events).where(events.c.position > keep))
    report = await verify_chain(engine)
    assert (report.ok, report.count) == (True, keep)  # the chain alone cannot see a shorter log
    problem = await check_against_log(engine, read_checkpoint(path))
    assert problem == f"the log no longer reaches position {LOG_LENGTH}: it was truncated"


async def test_a_re_chained_tail_is_caught_by_the_signed_checkpoint(
    engine: AsyncEngine, log: list[dict[str, Any]], tmp_path: Path
) -> None:
    path = await sign(engine, tmp_path)
    rows = [dict(r) for r in log]
    rows[19]["data"] = edited(rows[19], "data", "edit")
    for i in range(19, LOG_LENGTH):
        rows[i]["prev_hash"] = rows[i - 1]["hash"]
        rows[i]["hash"] = rehash(rows[i], rows[i]["prev_hash"])
    await restore(engine, rows)
    assert (await verify_chain(engine)).ok  # internally consistent again
    problem = await check_against_log(engine, read_checkpoint(path))
    assert problem is not None
    assert "rewritten" in problem


async def test_verification_runs_in_a_transaction_that_refuses_writes(
    engine: AsyncEngine, log: list[dict[str, Any]]
) -> None:
    with pytest.raises(DBAPIError):
        async with read_only_transaction(engine) as conn:
            await conn.execute(update(projection_checkpoints).values(position=0))
    # The pooled connection is writable again for everyone else afterwards.
    async with engine.begin() as conn:
        await conn.execute(update(projection_checkpoints).values(updated_at_us=1))
