"""Webhook payloads are part of the contract and of the outbox projection: a rebuild must write them
byte for byte as the live runner did, whatever code produced the live rows. These are pinned."""

# ruff: noqa: E501 (the pinned payloads are single lines on purpose)
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from reservekit.domain.events import (
    FlagResolved,
    KeyCreated,
    KeyRevoked,
    KeyRotated,
    KeyUpdated,
    LeakReported,
    Metadata,
    RecordedEvent,
    WebhookEndpointDisabled,
)
from reservekit.webhooks.payloads import messages_for

at = datetime(2026, 11, 29, 4, 5, 6, 789012, tzinfo=UTC)
whole = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
offset = datetime(2027, 1, 2, 3, 4, 5, 120000, tzinfo=timezone(timedelta(hours=2)))
EVENTS = [
    KeyCreated(
        key_id="key_a",
        account_id="acct_a",
        key_hash="h",
        prefix="sk_rsv_ab",
        last4="wxyz",
        name="ci",
        domains=("a.example",),
        scopes=("bookings:read",),
        expires_at=whole,
    ),
    KeyCreated(
        key_id="key_b",
        account_id="acct_a",
        key_hash="h2",
        prefix="sk_rsv_cd",
        last4="abcd",
        rotated_from="key_a",
    ),
    KeyRevoked(key_id="key_a", account_id="acct_a", reason="rotated out"),
    KeyUpdated(
        key_id="key_a", account_id="acct_a", name=None, scopes=(), domains=("b.example",), expires_at=offset
    ),
    KeyRotated(key_id="key_a", account_id="acct_a", new_key_id="key_b", grace_ends_at=whole),
    LeakReported(key_id="key_b", account_id="acct_a", source="github"),
    FlagResolved(flag_id="flg_1", account_id="acct_a", resolution="dismissed", note="ok"),
    WebhookEndpointDisabled(endpoint_id="whe_1", account_id="acct_a", reason="failing", failing_since=whole),
]

EXPECTED = [
    (
        "evt_1.key.created",
        None,
        '{"data":{"account_id":"acct_a","domains":["a.example"],"event_position":1,"expires_at":"2027-01-02T03:04:05Z","id":"key_a","last4":"wxyz","name":"ci","object":"api_key","prefix":"sk_rsv_ab","rotated_from":null,"scopes":["bookings:read"]},"timestamp":"2026-11-29T04:05:06.789012Z","type":"key.created"}',
    ),
    (
        "evt_2.key.created",
        None,
        '{"data":{"account_id":"acct_a","domains":[],"event_position":2,"expires_at":null,"id":"key_b","last4":"abcd","name":null,"object":"api_key","prefix":"sk_rsv_cd","rotated_from":"key_a","scopes":[]},"timestamp":"2027-01-02T03:04:05Z","type":"key.created"}',
    ),
    (
        "evt_3.key.revoked",
        None,
        '{"data":{"account_id":"acct_a","event_position":3,"id":"key_a","object":"api_key","reason":"rotated out"},"timestamp":"2026-11-29T04:05:06.789012Z","type":"key.revoked"}',
    ),
    (
        "evt_4.key.updated",
        None,
        '{"data":{"account_id":"acct_a","domains":["b.example"],"event_position":4,"expires_at":"2027-01-02T03:04:05.120000+02:00","id":"key_a","name":null,"object":"api_key","scopes":[]},"timestamp":"2027-01-02T03:04:05Z","type":"key.updated"}',
    ),
    (
        "evt_5.key.rotated",
        None,
        '{"data":{"account_id":"acct_a","event_position":5,"grace_ends_at":"2027-01-02T03:04:05Z","id":"key_a","object":"api_key","rotated_to":"key_b"},"timestamp":"2026-11-29T04:05:06.789012Z","type":"key.rotated"}',
    ),
    (
        "evt_6.leak.reported",
        None,
        '{"data":{"account_id":"acct_a","event_position":6,"key_id":"key_b","key_revoked":true,"object":"leak_report"},"timestamp":"2027-01-02T03:04:05Z","type":"leak.reported"}',
    ),
    (
        "evt_6.flag.raised",
        "critical",
        '{"data":{"account_id":"acct_a","event_position":6,"first_seen":"2027-01-02T03:04:05Z","id":"flg_09dbf950b748c82954993e48","key_id":"key_b","object":"flag","rule":"leaked_key_reported","severity":"critical","subject":"key:key_b"},"timestamp":"2027-01-02T03:04:05Z","type":"flag.raised"}',
    ),
    (
        "evt_7.flag.resolved",
        None,
        '{"data":{"account_id":"acct_a","event_position":7,"id":"flg_1","note":"ok","object":"flag","resolution":"dismissed"},"timestamp":"2026-11-29T04:05:06.789012Z","type":"flag.resolved"}',
    ),
    (
        "evt_8.flag.raised",
        "high",
        '{"data":{"account_id":"acct_a","endpoint_id":"whe_1","event_position":8,"first_seen":"2027-01-02T03:04:05Z","id":"flg_1b40dc8c28fd2860e7440de5","object":"flag","reason":"failing","rule":"webhook_endpoint_disabled","severity":"high","subject":"webhook:whe_1"},"timestamp":"2027-01-02T03:04:05Z","type":"flag.raised"}',
    ),
]


def test_every_message_kind_encodes_exactly_as_pinned() -> None:
    produced = []
    for position, event in enumerate(EVENTS, start=1):
        recorded = RecordedEvent(
            position=position,
            stream_id="s",
            stream_version=1,
            type=event.__struct_config__.tag,  # type: ignore[arg-type]
            data=event,
            metadata=Metadata(source="api"),
            recorded_at=at if position % 2 else whole,  # microseconds and none: both spellings
            prev_hash="",
            hash="",
        )
        produced += [(m.message_id, m.severity, m.payload) for m in messages_for(recorded)]
    assert produced == EXPECTED
