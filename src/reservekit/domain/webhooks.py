"""Webhook endpoints as pure decisions over the endpoint's folded stream (stream id = endpoint id).

The URL rules here are the ones that need no network: scheme, shape, and literal IP addresses. Whether
a host name resolves to a private address is checked by the adapter (``webhooks/ssrf.py``) both when an
endpoint is saved and before every delivery.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

import msgspec

from reservekit.domain.errors import Conflict, InvalidInput
from reservekit.domain.events import (
    Event,
    RecordedEvent,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookEndpointDisabled,
    WebhookEndpointSecretRolled,
    WebhookEndpointUpdated,
)

# What an endpoint can subscribe to (the ``type`` of the delivered JSON).
WEBHOOK_EVENT_TYPES: tuple[str, ...] = (
    "flag.raised",
    "flag.resolved",
    "key.created",
    "key.updated",
    "key.rotated",
    "key.revoked",
    "leak.reported",
    "rate_limit.reached",
)
TEST_EVENT_TYPE = "webhook.test"
# The flag severities, lowest first (the detectors' catalogue uses the same four).
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 500


class EndpointState(msgspec.Struct, frozen=True, kw_only=True):
    endpoint_id: str
    account_id: str
    url: str
    event_types: tuple[str, ...]
    min_flag_severity: str
    enabled: bool
    description: str | None
    created_at: datetime
    updated_at: datetime
    secret_version: int = 1
    disabled_reason: str | None = None
    deleted: bool = False
    version: int = 1
    position: int = 0


def evolve_endpoint(state: EndpointState | None, recorded: RecordedEvent) -> EndpointState | None:
    event = recorded.data
    if isinstance(event, WebhookEndpointCreated):
        return EndpointState(
            endpoint_id=event.endpoint_id,
            account_id=event.account_id,
            url=event.url,
            event_types=event.event_types,
            min_flag_severity=event.min_flag_severity,
            enabled=event.enabled,
            description=event.description,
            created_at=recorded.recorded_at,
            updated_at=recorded.recorded_at,
            version=recorded.stream_version,
            position=recorded.position,
        )
    if state is None:
        return None
    moved = {
        "version": recorded.stream_version,
        "position": recorded.position,
        "updated_at": recorded.recorded_at,
    }
    if isinstance(event, WebhookEndpointUpdated):
        changes: dict[str, object] = {
            name: getattr(event, name)
            for name in ("url", "event_types", "min_flag_severity", "enabled")
            if getattr(event, name) is not None
        }
        if event.description is not None:
            changes["description"] = event.description or None
        if event.enabled:
            changes["disabled_reason"] = None
        return msgspec.structs.replace(state, **changes, **moved)
    if isinstance(event, WebhookEndpointSecretRolled):
        return msgspec.structs.replace(state, secret_version=event.secret_version, **moved)
    if isinstance(event, WebhookEndpointDisabled):
        return msgspec.structs.replace(state, enabled=False, disabled_reason=event.reason, **moved)
    if isinstance(event, WebhookEndpointDeleted):
        return msgspec.structs.replace(state, deleted=True, enabled=False, **moved)
    return state


def fold_endpoint(history: Iterable[RecordedEvent]) -> EndpointState | None:
    state: EndpointState | None = None
    for recorded in history:
        state = evolve_endpoint(state, recorded)
    return state


def validate_url(url: str, *, allow_loopback: bool) -> str:
    """https anywhere public; http only to loopback, and only when the development setting allows it."""
    text = url.strip()
    if not text or len(text) > MAX_URL_CHARS:
        raise InvalidInput(f"url must be 1 to {MAX_URL_CHARS} characters", field="url")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidInput("url is not a valid URL", field="url") from None
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInput("url must be an absolute https:// URL", field="url")
    if parts.username or parts.password:
        raise InvalidInput("url must not carry credentials", field="url")
    if parts.fragment:
        raise InvalidInput("url must not have a #fragment", field="url")
    if port == 0:
        raise InvalidInput("url has an invalid port", field="url")
    loopback = is_loopback_host(host)
    if loopback and not allow_loopback:
        raise InvalidInput(
            "url points at a loopback address; allowed only with RESERVEKIT_WEBHOOKS_ALLOW_LOOPBACK=true",
            field="url",
        )
    if parts.scheme == "http" and not loopback:
        raise InvalidInput("url must use https (http is accepted for loopback development only)", field="url")
    literal = _literal_ip(host)
    if literal is not None and not literal.is_loopback and not literal.is_global:
        raise InvalidInput("url points at a private, link-local or reserved address", field="url")
    return text


def is_loopback_host(host: str) -> bool:
    literal = _literal_ip(host)
    if literal is not None:
        return literal.is_loopback
    return host == "localhost" or host.endswith(".localhost")


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def validate_event_types(event_types: Iterable[str]) -> tuple[str, ...]:
    chosen = set(event_types)
    unknown = sorted(chosen - set(WEBHOOK_EVENT_TYPES))
    if unknown:
        raise InvalidInput(
            f"unknown event type {unknown[0]!r}; allowed: {', '.join(WEBHOOK_EVENT_TYPES)}",
            field="event_types",
        )
    if not chosen:
        raise InvalidInput("an endpoint needs at least one event type", field="event_types")
    return tuple(sorted(chosen))


def validate_severity(severity: str) -> str:
    if severity not in SEVERITIES:
        raise InvalidInput(
            f"min_flag_severity must be one of {', '.join(SEVERITIES)}", field="min_flag_severity"
        )
    return severity


def _description(value: str | None) -> str | None:
    if value is not None and len(value) > MAX_DESCRIPTION_CHARS:
        raise InvalidInput(
            f"description must be at most {MAX_DESCRIPTION_CHARS} characters", field="description"
        )
    return value


def decide_create_endpoint(
    *,
    endpoint_id: str,
    account_id: str,
    url: str,
    event_types: Iterable[str],
    min_flag_severity: str = "low",
    enabled: bool = True,
    description: str | None = None,
    allow_loopback: bool,
) -> list[Event]:
    return [
        WebhookEndpointCreated(
            endpoint_id=endpoint_id,
            account_id=account_id,
            url=validate_url(url, allow_loopback=allow_loopback),
            event_types=validate_event_types(event_types),
            min_flag_severity=validate_severity(min_flag_severity),
            enabled=enabled,
            description=_description(description) or None,
        )
    ]


def decide_update_endpoint(
    state: EndpointState,
    *,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    min_flag_severity: str | None = None,
    enabled: bool | None = None,
    description: str | None = None,
    allow_loopback: bool,
) -> list[Event]:
    """Only real changes are recorded; a PATCH that changes nothing writes no event."""
    _require_live(state)
    new_url = validate_url(url, allow_loopback=allow_loopback) if url is not None else None
    types = validate_event_types(event_types) if event_types is not None else None
    severity = validate_severity(min_flag_severity) if min_flag_severity is not None else None
    text = _description(description)
    event = WebhookEndpointUpdated(
        endpoint_id=state.endpoint_id,
        account_id=state.account_id,
        url=new_url if new_url != state.url else None,
        event_types=types if types != state.event_types else None,
        min_flag_severity=severity if severity != state.min_flag_severity else None,
        enabled=enabled if enabled != state.enabled else None,
        description=text if text is not None and (text or None) != state.description else None,
    )
    changed = any(
        getattr(event, name) is not None
        for name in ("url", "event_types", "min_flag_severity", "enabled", "description")
    )
    return [event] if changed else []


def decide_roll_secret(state: EndpointState) -> list[Event]:
    _require_live(state)
    return [
        WebhookEndpointSecretRolled(
            endpoint_id=state.endpoint_id,
            account_id=state.account_id,
            secret_version=state.secret_version + 1,
        )
    ]


def decide_delete_endpoint(state: EndpointState) -> list[Event]:
    if state.deleted:
        return []
    return [WebhookEndpointDeleted(endpoint_id=state.endpoint_id, account_id=state.account_id)]


def decide_disable_for_failures(state: EndpointState, *, failing_since: datetime, reason: str) -> list[Event]:
    """Only an endpoint still enabled is disabled: a repeated decision after a race writes nothing."""
    if state.deleted or not state.enabled:
        return []
    return [
        WebhookEndpointDisabled(
            endpoint_id=state.endpoint_id,
            account_id=state.account_id,
            reason=reason,
            failing_since=failing_since,
        )
    ]


def _require_live(state: EndpointState) -> None:
    if state.deleted:
        raise Conflict(f"webhook endpoint {state.endpoint_id} was deleted")


def wants(state_types: Iterable[str], min_severity: str, event_type: str, severity: str | None) -> bool:
    """Whether an endpoint subscribed to ``event_type`` (flags also by severity); tests always go."""
    if event_type == TEST_EVENT_TYPE:
        return True
    if event_type not in state_types:
        return False
    if event_type == "flag.raised" and severity is not None:
        return SEVERITIES.index(severity) >= SEVERITIES.index(min_severity)
    return True
