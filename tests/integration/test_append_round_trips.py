"""An append on PostgreSQL is three statements inside its transaction: each is a round trip of a
single-key create's latency (0.15-0.4 ms on the benchmark machine, docs/benchmarks.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from reservekit.db import create_engine
from reservekit.domain.events import AccountOpened, Metadata
from reservekit.events.store import SqlEventStore, StreamWrite


async def test_an_append_is_the_lock_one_read_and_one_write(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    store = SqlEventStore(engine)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    try:
        opened = AccountOpened(account_id="acct_a", name="A", plan="free")
        await store.append([StreamWrite("acct_a", 0, [opened])], Metadata(source="test"))
        event.listen(engine.sync_engine, "before_cursor_execute", seen)
        changed = AccountOpened(account_id="acct_b", name="B", plan="free")
        recorded = await store.append([StreamWrite("acct_b", 0, [changed])], Metadata(source="test"))
    finally:
        await engine.dispose()
    assert [r.position for r in recorded] == [2]
    assert len(statements) == 3, statements
    assert statements[0].startswith("SELECT pg_advisory_xact_lock")
    assert "UNION ALL" in statements[1]  # the head and the streams' versions together
    assert statements[2].startswith("WITH appended AS (INSERT INTO events")  # and the NOTIFY
