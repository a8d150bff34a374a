"""Read-your-writes applies the events this process has just appended without reading them back,
and reads the log whenever something in between came from elsewhere (another replica)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

import projections
from reservekit.domain.events import AccountOpened, Metadata, RecordedEvent
from reservekit.events.store import StreamWrite
from reservekit.projecting.rebuild import verify_projection
from reservekit.projecting.recent import RecentAppends
from reservekit.runtime import Runtime
from reservekit.usecases.commands import CreateKey, OpenAccount

META = Metadata(source="test")


@contextmanager
def log_reads(engine: AsyncEngine) -> Iterator[list[str]]:
    """Statements that read the event log by position (what ``read_after`` sends)."""
    seen: list[str] = []

    def before(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        flat = " ".join(statement.split())
        if "FROM events WHERE events.position >" in flat:
            seen.append(flat)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


async def test_the_writer_applies_its_own_events_from_memory(replicas: tuple[Runtime, Runtime]) -> None:
    a, _b = replicas
    opened = await a.application.execute(OpenAccount(name="acme"), META)
    with log_reads(a.engine) as reads:
        issued = await a.application.execute(
            CreateKey(account_id=opened.account.account_id, name="web"), META
        )
    assert reads == []
    # ... and the projections hold it exactly as a replay of the log would.
    for projection in projections.build_all(a.settings):
        if projection.source.name == "events":
            result = await verify_projection(a.engine, projection)
            assert result.differences == (), projection.name
    assert issued.key.key_id


async def test_an_append_from_another_replica_in_between_is_read_from_the_log(
    replicas: tuple[Runtime, Runtime],
) -> None:
    a, b = replicas
    opened = await a.application.execute(OpenAccount(name="acme"), META)
    account_id = opened.account.account_id
    # B's append, not yet applied by anyone (its own read-your-writes would have applied it).
    await b.store.append(
        [StreamWrite("acct_from_b", 0, [AccountOpened(account_id="acct_from_b", name="b", plan="free")])],
        META,
    )
    with log_reads(a.engine) as reads:
        from_a = await a.application.execute(CreateKey(account_id=account_id, name="from a"), META)
    assert reads, "A applied without B's event: it must have read the log"
    for projection in projections.build_all(a.settings):
        if projection.source.name == "events":
            result = await verify_projection(a.engine, projection)
            assert result.differences == (), projection.name
    assert from_a.key.key_id


def recorded(position: int) -> RecordedEvent:
    from datetime import UTC, datetime

    return RecordedEvent(
        position=position,
        stream_id=f"acct_{position}",
        stream_version=1,
        type="account_opened",
        data=AccountOpened(account_id=f"acct_{position}", name="n", plan="free"),
        metadata=META,
        recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
        prev_hash="0" * 64,
        hash="1" * 64,
    )


def test_recent_appends_answer_only_a_range_they_hold_whole() -> None:
    recent = RecentAppends(capacity=4)
    recent.remember([recorded(3), recorded(4)])
    recent.remember([recorded(6)])  # 5 came from elsewhere
    assert [e.position for e in recent.between(2, 4) or []] == [3, 4]
    assert recent.between(3, 6) is None
    assert recent.between(6, 6) is None  # an empty range is read, not assumed
    recent.remember([recorded(5)])  # listeners may run out of commit order
    assert [e.position for e in recent.between(2, 6) or []] == [3, 4, 5, 6]
    recent.remember([recorded(7)])  # over capacity: the oldest held (3) goes
    assert recent.between(2, 7) is None
    assert [e.position for e in recent.between(3, 7) or []] == [4, 5, 6, 7]
