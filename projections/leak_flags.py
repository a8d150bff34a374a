"""Flags that come from the lifecycle log: reported leaks, disabled webhooks, every flag's resolution.

``LeakReported`` becomes a critical ``leaked_key_reported`` flag; ``WebhookEndpointDisabled`` (the
dispatcher gave up on an endpoint after a day of failures) a high ``webhook_endpoint_disabled`` one.
``FlagResolved`` (for a flag of either projection) is kept per flag, latest wins. Status is not stored: a
reader joins the resolution and calls a flag resolved only if it was resolved at or after its last hit,
so a pattern that recurs after a resolution shows as open again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, Text, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from projections._upsert import upsert_many
from projections.usage_flags import encode_evidence, flag_columns
from reservekit.clock import to_micros
from reservekit.detectors.flags import flag_id_for
from reservekit.detectors.rules import LEAKED_KEY_REPORTED, RULES, WEBHOOK_ENDPOINT_DISABLED, key_subject
from reservekit.domain.events import FlagResolved, LeakReported, RecordedEvent, WebhookEndpointDisabled
from reservekit.projecting.spec import Projection

EVIDENCE_SOURCE_CHARS = 500
"""A flag's evidence shows the start of the reported source; the event keeps it whole (2000 chars)."""
_RESOLUTION_FIELDS = (
    "account_id",
    "resolved_at_us",
    "resolution",
    "note",
    "actor",
    "actor_account_id",
    "position",
)


class LeakFlagTables(NamedTuple):
    flags: Table
    resolutions: Table


def define(metadata: MetaData, suffix: str) -> LeakFlagTables:
    name = f"proj_leak_flags{suffix}"
    return LeakFlagTables(
        Table(name, metadata, *flag_columns(), Index(f"ix_{name}_account", "account_id", "first_seen_us")),
        Table(
            f"proj_flag_resolutions{suffix}",
            metadata,
            Column("flag_id", String(64), primary_key=True),
            Column("account_id", String(64), nullable=False),
            Column("resolved_at_us", BigInteger, nullable=False),
            Column("resolution", String(32), nullable=False),
            Column("note", Text),
            Column("actor", String(64)),
            Column("actor_account_id", String(64)),
            Column("position", BigInteger, nullable=False),
        ),
    )


async def apply(conn: AsyncConnection, tables: LeakFlagTables, batch: Sequence[RecordedEvent]) -> None:
    for recorded in batch:
        event = recorded.data
        if not isinstance(event, LeakReported | WebhookEndpointDisabled | FlagResolved):
            continue  # most of the log; converting its instants was 7 % of a rebuild
        at_us = to_micros(recorded.recorded_at)
        if isinstance(event, LeakReported):
            subject = key_subject(event.key_id)
            ip = recorded.metadata.client_ip
            evidence = {
                "source": (event.source or "")[:EVIDENCE_SOURCE_CHARS] or None,
                "reported_from": ip,
                "reported_by": recorded.metadata.actor_key_id or "anonymous",
            }
            await conn.execute(
                insert(tables.flags).values(
                    flag_id=flag_id_for(LEAKED_KEY_REPORTED, subject, at_us),
                    rule=LEAKED_KEY_REPORTED,
                    severity=RULES[LEAKED_KEY_REPORTED].severity,
                    account_id=event.account_id,
                    key_id=event.key_id,
                    client_ip=ip,
                    subject=subject,
                    first_seen_us=at_us,
                    last_seen_us=at_us,
                    hits=1,
                    evidence=encode_evidence(evidence),
                )
            )
        elif isinstance(event, WebhookEndpointDisabled):
            subject = "webhook:" + event.endpoint_id
            await conn.execute(
                insert(tables.flags).values(
                    flag_id=flag_id_for(WEBHOOK_ENDPOINT_DISABLED, subject, at_us),
                    rule=WEBHOOK_ENDPOINT_DISABLED,
                    severity=RULES[WEBHOOK_ENDPOINT_DISABLED].severity,
                    account_id=event.account_id,
                    key_id=None,
                    client_ip=None,
                    subject=subject,
                    first_seen_us=at_us,
                    last_seen_us=at_us,
                    hits=1,
                    evidence=encode_evidence(
                        {
                            "endpoint_id": event.endpoint_id,
                            "reason": event.reason,
                            "failing_since": event.failing_since.isoformat(),
                        }
                    ),
                )
            )
        elif isinstance(event, FlagResolved):
            row = {
                "flag_id": event.flag_id,
                "account_id": event.account_id,
                "resolved_at_us": at_us,
                "resolution": event.resolution,
                "note": event.note,
                # Who resolved it: the key through the API, the member through the dashboard, else the
                # source (the CLI).
                "actor": (
                    recorded.metadata.actor_key_id
                    or recorded.metadata.actor_member_id
                    or recorded.metadata.source
                ),
                "actor_account_id": recorded.metadata.actor_account_id,
                "position": recorded.position,
            }
            await upsert_many(
                conn,
                tables.resolutions,
                [row],
                conflict=("flag_id",),
                set_=lambda x: {name: getattr(x, name) for name in _RESOLUTION_FIELDS},
            )


PROJECTION = Projection(
    name="leak_flags",
    version=3,
    define=define,
    apply=apply,
    description="leak-report flags and the resolution of every flag",
    folds=(LeakReported, WebhookEndpointDisabled, FlagResolved),
)
LIVE = PROJECTION.live
