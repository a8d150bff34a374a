"""Suspicious-usage flags: the detectors of ``reservekit.detectors`` run over the usage log.

The rules are pure; this module owns their memory (per-key history, known IPs, sliding windows) and
the flags, and persists exactly the slice of state each batch touched. Every value stored is an
integer or text derived from the log, so ``rebuild --verify`` reproduces the live tables, flag ids
included, whatever the batch boundaries. The thresholds' fingerprint is part of ``version``: changing
a threshold drops these tables and replays the log under the new rules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from projections._upsert import upsert_many
from reservekit.detectors import Detectors, DetectorState, DetectorThresholds
from reservekit.detectors.rules import ip_subject, key_subject
from reservekit.detectors.state import KeyTrack, OpenFlag, Window
from reservekit.projecting.sources import USAGE
from reservekit.projecting.spec import Projection
from reservekit.usage.records import UsageRecord

NAME = "usage_flags"
BASE_VERSION = 1
_CHUNK = 500
T = TypeVar("T")


def flag_columns() -> list[Column[Any]]:
    """The columns every flag table has (the leak flags share them)."""
    return [
        Column("flag_id", String(64), primary_key=True),
        Column("rule", String(64), nullable=False),
        Column("severity", String(16), nullable=False),
        Column("account_id", String(64)),
        Column("key_id", String(64)),
        Column("client_ip", String(64)),
        Column("subject", String(128), nullable=False),
        Column("first_seen_us", BigInteger, nullable=False),
        Column("last_seen_us", BigInteger, nullable=False),
        Column("hits", BigInteger, nullable=False),
        Column("evidence", Text, nullable=False),
    ]


class FlagTables(NamedTuple):
    flags: Table
    keys: Table
    key_ips: Table
    windows: Table


def define(metadata: MetaData, suffix: str) -> FlagTables:
    name = f"proj_usage_flags{suffix}"
    return FlagTables(
        Table(
            name,
            metadata,
            *flag_columns(),
            Index(f"ix_{name}_subject", "subject", "rule", "first_seen_us"),
            Index(f"ix_{name}_account", "account_id", "first_seen_us"),
        ),
        Table(
            f"proj_usage_flag_keys{suffix}",
            metadata,
            Column("key_id", String(64), primary_key=True),
            Column("account_id", String(64)),
            Column("first_seen_us", BigInteger, nullable=False),
            Column("last_seen_us", BigInteger, nullable=False),
            Column("uses", BigInteger, nullable=False),
            Column("minute", BigInteger, nullable=False),
            Column("minute_count", BigInteger, nullable=False),
            Column("ewma_milli", BigInteger, nullable=False),
            Column("history_minutes", BigInteger, nullable=False),
        ),
        Table(
            f"proj_usage_flag_key_ips{suffix}",
            metadata,
            Column("key_id", String(64), primary_key=True),
            Column("client_ip", String(64), primary_key=True),
            Column("first_seen_us", BigInteger, nullable=False),
        ),
        Table(
            f"proj_usage_flag_windows{suffix}",
            metadata,
            Column("rule", String(64), primary_key=True),
            Column("subject", String(128), primary_key=True),
            Column("entries", Integer, nullable=False),
            Column("state", Text, nullable=False),
        ),
    )


def encode_evidence(evidence: dict[str, Any]) -> str:
    return msgspec.json.encode(evidence, order="sorted").decode()


def _chunks(values: Iterable[T]) -> Iterator[list[T]]:
    items = sorted(set(values))  # type: ignore[type-var]
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def row_to_flag(row: Any) -> OpenFlag:
    m = row._mapping
    return OpenFlag(
        flag_id=m["flag_id"],
        rule=m["rule"],
        severity=m["severity"],
        account_id=m["account_id"],
        key_id=m["key_id"],
        client_ip=m["client_ip"],
        subject=m["subject"],
        first_seen_us=int(m["first_seen_us"]),
        last_seen_us=int(m["last_seen_us"]),
        hits=int(m["hits"]),
        evidence=msgspec.json.decode(m["evidence"], type=dict[str, Any]),
    )


async def load_state(
    conn: AsyncConnection, tables: FlagTables, batch: Sequence[UsageRecord]
) -> DetectorState:
    """The state every row of ``batch`` can touch: its keys, (key, IP) pairs, windows and open flags."""
    state = DetectorState()
    key_ids = {r.key_id for r in batch if r.key_id is not None}
    ips = {r.client_ip for r in batch}
    subjects = {key_subject(k) for k in key_ids} | {ip_subject(ip) for ip in ips}
    flags, keys, key_ips, windows = tables
    for chunk in _chunks(key_ids):
        for row in await conn.execute(select(keys).where(keys.c.key_id.in_(chunk))):
            state.keys[row.key_id] = KeyTrack(**row._asdict())
        for ip_chunk in _chunks(ips):
            known = select(key_ips.c.key_id, key_ips.c.client_ip).where(
                key_ips.c.key_id.in_(chunk), key_ips.c.client_ip.in_(ip_chunk)
            )
            state.known_ips.update((row.key_id, row.client_ip) for row in await conn.execute(known))
    for chunk in _chunks(subjects):
        for row in await conn.execute(select(windows).where(windows.c.subject.in_(chunk))):
            state.windows[(row.rule, row.subject)] = Window.decode(row.state)
        latest = (
            select(flags.c.rule, flags.c.subject, func.max(flags.c.first_seen_us).label("first"))
            .where(flags.c.subject.in_(chunk))
            .group_by(flags.c.rule, flags.c.subject)
            .subquery()
        )
        heads = select(flags).join(
            latest,
            and_(
                flags.c.rule == latest.c.rule,
                flags.c.subject == latest.c.subject,
                flags.c.first_seen_us == latest.c.first,
            ),
        )
        for row in await conn.execute(heads):
            flag = row_to_flag(row)
            state.heads[(flag.rule, flag.subject)] = flag
    return state


async def save_state(conn: AsyncConnection, tables: FlagTables, state: DetectorState) -> None:
    flags, keys, key_ips, windows = tables
    await upsert_many(
        conn,
        keys,
        [msgspec.structs.asdict(state.keys[k]) for k in sorted(state.dirty_keys)],
        conflict=("key_id",),
        set_=lambda x: {c.name: getattr(x, c.name) for c in keys.columns if c.name != "key_id"},
    )
    if state.new_ips:
        await conn.execute(
            insert(key_ips),
            [{"key_id": k, "client_ip": ip, "first_seen_us": at} for (k, ip), at in state.new_ips.items()],
        )
    await upsert_many(
        conn,
        windows,
        [
            {"rule": rule, "subject": subject, "entries": w.count + len(w.values), "state": w.encode()}
            for (rule, subject), w in ((key, state.windows[key]) for key in sorted(state.dirty_windows))
        ],
        conflict=("rule", "subject"),
        set_=lambda x: {"entries": x.entries, "state": x.state},
    )
    await upsert_many(
        conn,
        flags,
        [
            {**msgspec.structs.asdict(flag), "evidence": encode_evidence(flag.evidence)}
            for flag in state.dirty_flags.values()
        ],
        conflict=("flag_id",),
        set_=lambda x: {
            "account_id": x.account_id,
            "last_seen_us": x.last_seen_us,
            "hits": x.hits,
            "evidence": x.evidence,
        },
    )


def projection_version(thresholds: DetectorThresholds) -> int:
    """``BASE_VERSION`` in the high bits, 24 bits of the thresholds' fingerprint below (fits INTEGER)."""
    return (BASE_VERSION << 24) + int(thresholds.fingerprint(), 16) % (1 << 24)


class Replay:
    """usage_flags through one rebuild: the detectors' state stays in memory from batch to batch.

    ``apply`` loads the slice of state each batch touches (half of a rebuild's time went there). A
    rebuild's tables hold only what this replay wrote, so its memory is the whole state and nothing
    needs loading; what changed is written every ``FLUSH_ROWS`` rows and at ``finish``. Past
    ``MAX_ENTRIES`` remembered keys, IPs, windows and flags it writes what it holds, forgets it, and goes
    on as ``apply`` does, so memory stays bounded whatever the log's size.
    """

    FLUSH_ROWS = 100_000
    MAX_ENTRIES = 500_000

    def __init__(self, detectors: Detectors, apply: Apply) -> None:
        self._detectors = detectors
        self._apply = apply
        self._state: DetectorState | None = DetectorState()
        self._unsaved = 0

    async def apply(self, conn: AsyncConnection, tables: FlagTables, batch: Sequence[UsageRecord]) -> None:
        state = self._state
        if state is None:
            await self._apply(conn, tables, batch)
            return
        self._detectors.run(state, batch)
        self._unsaved += len(batch)
        if state.entries > self.MAX_ENTRIES:
            await self.finish(conn, tables)
            self._state = None
        elif self._unsaved >= self.FLUSH_ROWS:
            await self.finish(conn, tables)

    async def finish(self, conn: AsyncConnection, tables: FlagTables) -> None:
        if self._state is not None:
            await save_state(conn, tables, self._state)
            self._state.mark_saved()
            self._unsaved = 0


Apply = Callable[[AsyncConnection, FlagTables, Sequence[UsageRecord]], Awaitable[None]]


def make_projection(thresholds: DetectorThresholds) -> Projection[FlagTables, UsageRecord]:
    detectors = Detectors(thresholds)

    async def apply(conn: AsyncConnection, tables: FlagTables, batch: Sequence[UsageRecord]) -> None:
        state = await load_state(conn, tables, batch)
        detectors.run(state, batch)
        await save_state(conn, tables, state)

    return Projection(
        name=NAME,
        version=projection_version(thresholds),
        define=define,
        apply=apply,
        replay=lambda: Replay(detectors, apply),
        description="suspicious-usage flags from the usage log (detector thresholds in the version)",
        source=USAGE,
    )


LIVE = define(MetaData(), "")
"""The live tables, for readers (their shape does not depend on the thresholds)."""
