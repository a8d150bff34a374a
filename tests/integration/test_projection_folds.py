"""A projection that names the events it folds is rebuilt from those types only, and loses nothing by it.

Each projection with ``folds`` is rebuilt twice from a log holding every event type: once as declared
(the read asks the database for those types only) and once reading every event. The rows must be the
same, so an event class the projection reacts to but does not list makes this fail.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import projections as registry
from reservekit.db import read_transaction
from reservekit.domain.events import (
    EVENT_TYPES,
    AccountOpened,
    AccountPlanChanged,
    Event,
    FlagResolved,
    KeyRevoked,
    KeyRotated,
    KeyUpdated,
    LeakReported,
    MemberAdded,
    MemberInvitationAccepted,
    MemberInvitationRevoked,
    MemberInvited,
    MemberPasswordChanged,
    MemberRemoved,
    MemberRoleChanged,
    MemberSignedIn,
    MemberSignedOut,
    Metadata,
    UsageRetentionApplied,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookEndpointDisabled,
    WebhookEndpointSecretRolled,
    WebhookEndpointUpdated,
    event_type,
)
from reservekit.events.store import SqlEventStore, StreamWrite
from reservekit.projecting.rebuild import diff_snapshots, drop_tables, rebuild_into, snapshot
from reservekit.settings import Settings
from tests.integration.test_batch_folds import created

META = Metadata(source="test")
A = "acct_a"  # the account ``created`` writes keys for
LATER = datetime(2031, 1, 1, tzinfo=UTC)


EVERY_TYPE: list[tuple[str, list[Event]]] = [
    (A, [AccountOpened(account_id=A, name="A", plan="free"), AccountPlanChanged(account_id=A, plan="pro")]),
    ("mem_1", [MemberAdded(member_id="mem_1", account_id=A, email="a@example.com")]),
    (
        "mem_1",
        [MemberSignedIn(member_id="mem_1", account_id=A), MemberSignedOut(member_id="mem_1", account_id=A)],
    ),
    (
        "key_1",
        [created("key_1"), KeyUpdated(key_id="key_1", account_id=A, name="edited", scopes=("usage:read",))],
    ),
    (
        "whe_1",
        [
            WebhookEndpointCreated(
                endpoint_id="whe_1",
                account_id=A,
                url="https://h.example/",
                event_types=("key.created", "key.revoked"),
            )
        ],
    ),
    ("key_1", [KeyRotated(key_id="key_1", account_id=A, new_key_id="key_2", grace_ends_at=LATER)]),
    ("key_2", [created("key_2", rotated_from="key_1")]),
    (
        "inv_1",
        [
            MemberInvited(
                invitation_id="inv_1", account_id=A, email="b@example.com", role="viewer", expires_at=LATER
            )
        ],
    ),
    ("inv_1", [MemberInvitationAccepted(invitation_id="inv_1", account_id=A, member_id="mem_2")]),
    (
        "inv_2",
        [
            MemberInvited(
                invitation_id="inv_2", account_id=A, email="c@example.com", role="viewer", expires_at=LATER
            ),
            MemberInvitationRevoked(invitation_id="inv_2", account_id=A),
        ],
    ),
    (
        "whe_1",
        [
            WebhookEndpointUpdated(endpoint_id="whe_1", account_id=A, description="edited"),
            WebhookEndpointSecretRolled(endpoint_id="whe_1", account_id=A, secret_version=2),
        ],
    ),
    ("key_2", [LeakReported(key_id="key_2", account_id=A, source="paste")]),
    ("mem_1", [MemberPasswordChanged(member_id="mem_1", account_id=A)]),
    ("key_1", [KeyRevoked(key_id="key_1", account_id=A, reason="done")]),
    (
        "whe_1",
        [WebhookEndpointDisabled(endpoint_id="whe_1", account_id=A, reason="failing", failing_since=LATER)],
    ),
    ("flag_1", [FlagResolved(flag_id="flag_1", account_id=A, resolution="false_positive", note="fine")]),
    ("mem_2", [MemberRoleChanged(member_id="mem_2", account_id=A, role="admin", previous_role="viewer")]),
    ("mem_2", [MemberRemoved(member_id="mem_2", account_id=A, email="b@example.com")]),
    ("whe_1", [WebhookEndpointDeleted(endpoint_id="whe_1", account_id=A)]),
    (
        "usage-retention",
        [
            UsageRetentionApplied(
                account_id="system", boundary=LATER, through_position=0, rows=0, retention_days=90
            )
        ],
    ),
    (A, [AccountPlanChanged(account_id=A, plan="free")]),
    ("mem_1", [MemberSignedIn(member_id="mem_1", account_id=A)]),  # the log ends on an event none folds
]


async def write_every_type(store: SqlEventStore) -> None:
    versions: dict[str, int] = {}
    for stream, events in EVERY_TYPE:
        await store.append([StreamWrite(stream, versions.get(stream, 0), events)], META)
        versions[stream] = versions.get(stream, 0) + len(events)


def test_the_log_below_holds_every_event_type() -> None:
    assert {event_type(event) for _, events in EVERY_TYPE for event in events} == EVENT_TYPES


FOLDING = [p.name for p in registry.build_all(Settings()) if p.folds is not None]


def test_the_lifecycle_projections_name_what_they_fold() -> None:
    assert FOLDING == ["accounts", "api_keys", "leak_flags", "webhook_outbox"]


@pytest.mark.parametrize("name", FOLDING)
async def test_reading_only_the_folded_types_builds_the_same_rows_as_reading_every_event(
    store: SqlEventStore, engine: AsyncEngine, name: str
) -> None:
    await write_every_type(store)
    head = await store.head()
    declared = registry.by_name(registry.build_all(Settings()), name)
    everything = dataclasses.replace(declared, folds=None)
    reached: list[tuple[int, int]] = []

    typed = await rebuild_into(
        engine, declared, suffix="__typed", batch_size=2, progress=lambda p, t: reached.append((p, t))
    )
    every = await rebuild_into(engine, everything, suffix="__every", batch_size=2)

    async with read_transaction(engine) as conn:
        only_folded = await snapshot(conn, declared.tables("__typed"))
        from_every_event = await snapshot(conn, declared.tables("__every"))
    await drop_tables(engine, declared.tables("__typed"))
    await drop_tables(engine, declared.tables("__every"))
    assert any(only_folded.values())
    assert diff_snapshots(from_every_event, only_folded) == []
    assert every.events_applied == head
    assert 0 < typed.events_applied < head  # the filter did skip events
    assert typed.until_position == head
    assert reached[-1] == (head, head)  # the progress bar ends at the head, not at the last folded event
