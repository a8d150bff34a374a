"""What a lifecycle event becomes on the wire: ``{"type", "timestamp", "data": {...}}``, never a secret.

Pure functions of the log, so the outbox projection that calls them rebuilds to identical rows. Key
payloads carry the display hint (prefix, last4) and never the key's hash.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from reservekit.clock import to_micros
from reservekit.detectors.flags import flag_id_for
from reservekit.detectors.rules import LEAKED_KEY_REPORTED, RULES, WEBHOOK_ENDPOINT_DISABLED, key_subject
from reservekit.domain.events import (
    FlagResolved,
    KeyCreated,
    KeyRevoked,
    KeyRotated,
    KeyUpdated,
    LeakReported,
    RecordedEvent,
    WebhookEndpointDisabled,
)


class OutboxMessage(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    account_id: str
    event_type: str
    severity: str | None
    payload: str


_encoder = msgspec.json.Encoder(order="sorted")
# Instants go into payloads as datetimes: msgspec writes them exactly as ``iso`` does (RFC 3339, "Z" for
# UTC, microseconds only when there are some; tests/unit/test_webhook_payloads.py pins it) at a ninth
# of the cost, which was a tenth of an outbox rebuild.


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def envelope(event_type: str, at: datetime, data: dict[str, Any]) -> str:
    return _encoder.encode({"type": event_type, "timestamp": at, "data": data}).decode()


def _message(
    recorded: RecordedEvent, event_type: str, account_id: str, data: dict[str, Any], **kw: Any
) -> OutboxMessage:
    data = {**data, "event_position": recorded.position}
    return OutboxMessage(
        message_id=f"evt_{recorded.position}.{event_type}",
        account_id=account_id,
        event_type=event_type,
        severity=kw.get("severity"),
        payload=envelope(event_type, recorded.recorded_at, data),
    )


def _flag(recorded: RecordedEvent, rule: str, subject: str, account_id: str, **fields: Any) -> OutboxMessage:
    severity = RULES[rule].severity
    at = recorded.recorded_at
    data = {
        "object": "flag",
        "id": flag_id_for(rule, subject, to_micros(at)),
        "rule": rule,
        "severity": severity,
        "account_id": account_id,
        "subject": subject,
        "first_seen": at,
        **fields,
    }
    return _message(recorded, "flag.raised", account_id, data, severity=severity)


EVENTS_WITH_MESSAGES = (
    KeyCreated,
    KeyRevoked,
    KeyUpdated,
    KeyRotated,
    LeakReported,
    FlagResolved,
    WebhookEndpointDisabled,
)
"""The event classes ``messages_for`` answers for; every other event produces no message."""


def messages_for(recorded: RecordedEvent) -> list[OutboxMessage]:
    """The webhook messages one lifecycle event produces (most produce none; see ``EVENTS_WITH_MESSAGES``)."""
    event = recorded.data
    if isinstance(event, KeyCreated):
        data: dict[str, Any] = {
            "object": "api_key",
            "id": event.key_id,
            "account_id": event.account_id,
            "name": event.name,
            "prefix": event.prefix,
            "last4": event.last4,
            "scopes": list(event.scopes),
            "domains": list(event.domains),
            "expires_at": event.expires_at,
            "rotated_from": event.rotated_from,
        }
        return [_message(recorded, "key.created", event.account_id, data)]
    if isinstance(event, KeyRevoked):
        data = {
            "object": "api_key",
            "id": event.key_id,
            "account_id": event.account_id,
            "reason": event.reason,
        }
        return [_message(recorded, "key.revoked", event.account_id, data)]
    if isinstance(event, KeyUpdated):
        data = {
            "object": "api_key",
            "id": event.key_id,
            "account_id": event.account_id,
            "name": event.name,
            "scopes": list(event.scopes),
            "domains": list(event.domains),
            "expires_at": event.expires_at,
        }
        return [_message(recorded, "key.updated", event.account_id, data)]
    if isinstance(event, KeyRotated):
        data = {
            "object": "api_key",
            "id": event.key_id,
            "account_id": event.account_id,
            "rotated_to": event.new_key_id,
            "grace_ends_at": event.grace_ends_at,
        }
        return [_message(recorded, "key.rotated", event.account_id, data)]
    if isinstance(event, LeakReported):
        data = {
            "object": "leak_report",
            "key_id": event.key_id,
            "account_id": event.account_id,
            "key_revoked": True,
        }
        return [
            _message(recorded, "leak.reported", event.account_id, data),
            _flag(
                recorded,
                LEAKED_KEY_REPORTED,
                key_subject(event.key_id),
                event.account_id,
                key_id=event.key_id,
            ),
        ]
    if isinstance(event, FlagResolved):
        data = {
            "object": "flag",
            "id": event.flag_id,
            "account_id": event.account_id,
            "resolution": event.resolution,
            "note": event.note,
        }
        return [_message(recorded, "flag.resolved", event.account_id, data)]
    if isinstance(event, WebhookEndpointDisabled):
        return [
            _flag(
                recorded,
                WEBHOOK_ENDPOINT_DISABLED,
                endpoint_subject(event.endpoint_id),
                event.account_id,
                endpoint_id=event.endpoint_id,
                reason=event.reason,
            )
        ]
    return []


def endpoint_subject(endpoint_id: str) -> str:
    return "webhook:" + endpoint_id
