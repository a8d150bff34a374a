"""Lifecycle events: the source of truth, and the domain's own words for what happened.

Tagged msgspec structs; the tag is the stored ``type``. The log that stores them is ``reservekit.events``."""

from __future__ import annotations

from datetime import datetime

import msgspec


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    pass


class AccountOpened(_Event, frozen=True, kw_only=True, tag_field="type", tag="account_opened"):
    account_id: str
    name: str
    plan: str
    operator: bool = False


class AccountPlanChanged(_Event, frozen=True, kw_only=True, tag_field="type", tag="account_plan_changed"):
    account_id: str
    plan: str


class KeyCreated(_Event, frozen=True, kw_only=True, tag_field="type", tag="key_created"):
    key_id: str
    account_id: str
    key_hash: str
    prefix: str
    last4: str
    name: str | None = None
    domains: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None
    rotated_from: str | None = None


class KeyRevoked(_Event, frozen=True, kw_only=True, tag_field="type", tag="key_revoked"):
    key_id: str
    account_id: str
    reason: str | None = None


class KeyRotated(_Event, frozen=True, kw_only=True, tag_field="type", tag="key_rotated"):
    key_id: str
    account_id: str
    new_key_id: str
    grace_ends_at: datetime


class LeakReported(_Event, frozen=True, kw_only=True, tag_field="type", tag="leak_reported"):
    key_id: str
    account_id: str
    source: str | None = None


class KeyUpdated(_Event, frozen=True, kw_only=True, tag_field="type", tag="key_updated"):
    """The key's editable settings after the edit, in full (name, domains, scopes, expiry)."""

    key_id: str
    account_id: str
    name: str | None = None
    domains: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None


class MemberAdded(_Event, frozen=True, kw_only=True, tag_field="type", tag="member_added"):
    """A person who signs in to the dashboard. No password material: the hash lives in
    ``member_credentials`` (see docs/dashboard.md), never in the append-only log."""

    member_id: str
    account_id: str
    email: str
    role: str = "owner"
    # Set when the member joined through an invitation (stream ``inv_…``), absent for sign-up and the CLI.
    invitation_id: str | None = None


class MemberSignedIn(_Event, frozen=True, kw_only=True, tag_field="type", tag="member_signed_in"):
    member_id: str
    account_id: str


class MemberSignedOut(_Event, frozen=True, kw_only=True, tag_field="type", tag="member_signed_out"):
    member_id: str
    account_id: str


class MemberPasswordChanged(
    _Event, frozen=True, kw_only=True, tag_field="type", tag="member_password_changed"
):
    member_id: str
    account_id: str


class MemberInvited(_Event, frozen=True, kw_only=True, tag_field="type", tag="member_invited"):
    """An owner invited ``email`` with ``role``. The link's token is not here: only its SHA-256 is kept,
    in ``member_invitations`` beside the log, and deleted once the invitation is used."""

    invitation_id: str
    account_id: str
    email: str
    role: str
    expires_at: datetime


class MemberInvitationAccepted(
    _Event, frozen=True, kw_only=True, tag_field="type", tag="member_invitation_accepted"
):
    invitation_id: str
    account_id: str
    member_id: str


class MemberInvitationRevoked(
    _Event, frozen=True, kw_only=True, tag_field="type", tag="member_invitation_revoked"
):
    invitation_id: str
    account_id: str


class MemberRoleChanged(_Event, frozen=True, kw_only=True, tag_field="type", tag="member_role_changed"):
    member_id: str
    account_id: str
    role: str
    previous_role: str


class MemberRemoved(_Event, frozen=True, kw_only=True, tag_field="type", tag="member_removed"):
    """The member's sessions end and their credential is deleted in the same request."""

    member_id: str
    account_id: str
    email: str


class FlagResolved(_Event, frozen=True, kw_only=True, tag_field="type", tag="flag_resolved"):
    flag_id: str
    account_id: str
    resolution: str
    note: str | None = None


class WebhookEndpointCreated(
    _Event, frozen=True, kw_only=True, tag_field="type", tag="webhook_endpoint_created"
):
    """The signing secret is never here: it is stored encrypted in ``webhook_secrets`` (version 1)."""

    endpoint_id: str
    account_id: str
    url: str
    event_types: tuple[str, ...]
    min_flag_severity: str = "low"
    enabled: bool = True
    description: str | None = None


class WebhookEndpointUpdated(
    _Event, frozen=True, kw_only=True, tag_field="type", tag="webhook_endpoint_updated"
):
    """Only the fields that changed are set; ``None`` means unchanged (description: "" clears it)."""

    endpoint_id: str
    account_id: str
    url: str | None = None
    event_types: tuple[str, ...] | None = None
    min_flag_severity: str | None = None
    enabled: bool | None = None
    description: str | None = None


class WebhookEndpointSecretRolled(
    _Event, frozen=True, kw_only=True, tag_field="type", tag="webhook_endpoint_secret_rolled"
):
    endpoint_id: str
    account_id: str
    secret_version: int


class WebhookEndpointDisabled(
    _Event, frozen=True, kw_only=True, tag_field="type", tag="webhook_endpoint_disabled"
):
    """Written by the dispatcher after a day of failed deliveries (``reason``), not by a person."""

    endpoint_id: str
    account_id: str
    reason: str
    failing_since: datetime


class WebhookEndpointDeleted(
    _Event, frozen=True, kw_only=True, tag_field="type", tag="webhook_endpoint_deleted"
):
    endpoint_id: str
    account_id: str


class UsageRetentionApplied(
    _Event, frozen=True, kw_only=True, tag_field="type", tag="usage_retention_applied"
):
    """Usage rows recorded before ``boundary`` were dropped (``rows`` of them, positions up to
    ``through_position``). Written by the service, not a person; ``account_id`` is ``"system"``."""

    account_id: str
    boundary: datetime
    through_position: int
    rows: int
    retention_days: int


Event = (
    AccountOpened
    | AccountPlanChanged
    | KeyCreated
    | KeyRevoked
    | KeyRotated
    | LeakReported
    | FlagResolved
    | WebhookEndpointCreated
    | WebhookEndpointUpdated
    | WebhookEndpointSecretRolled
    | WebhookEndpointDisabled
    | WebhookEndpointDeleted
    | KeyUpdated
    | MemberAdded
    | MemberSignedIn
    | MemberSignedOut
    | MemberPasswordChanged
    | MemberInvited
    | MemberInvitationAccepted
    | MemberInvitationRevoked
    | MemberRoleChanged
    | MemberRemoved
    | UsageRetentionApplied
)

EVENT_TYPES: frozenset[str] = frozenset(
    str(cls.__struct_config__.tag)
    for cls in (
        AccountOpened,
        AccountPlanChanged,
        KeyCreated,
        KeyRevoked,
        KeyRotated,
        LeakReported,
        FlagResolved,
        WebhookEndpointCreated,
        WebhookEndpointUpdated,
        WebhookEndpointSecretRolled,
        WebhookEndpointDisabled,
        WebhookEndpointDeleted,
        KeyUpdated,
        MemberAdded,
        MemberSignedIn,
        MemberSignedOut,
        MemberPasswordChanged,
        MemberInvited,
        MemberInvitationAccepted,
        MemberInvitationRevoked,
        MemberRoleChanged,
        MemberRemoved,
        UsageRetentionApplied,
    )
)


class Metadata(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Who caused an event and from where; part of the hashed envelope."""

    actor_account_id: str | None = None
    actor_key_id: str | None = None
    # Commands run on a host: the operating-system user and the host name that ran them.
    actor_os_user: str | None = None
    actor_host: str | None = None
    request_id: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    source: str = "api"
    actor_member_id: str | None = None


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    position: int
    stream_id: str
    stream_version: int
    type: str
    data: Event
    metadata: Metadata
    recorded_at: datetime
    prev_hash: str
    hash: str


_event_decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
_metadata_decoder = msgspec.json.Decoder(Metadata)
_encoder = msgspec.json.Encoder()


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_event(raw: bytes | str) -> Event:
    return _event_decoder.decode(raw)


def encode_metadata(metadata: Metadata) -> bytes:
    return _encoder.encode(metadata)


def decode_metadata(raw: bytes | str) -> Metadata:
    return _metadata_decoder.decode(raw)


def event_type(event: Event) -> str:
    return str(type(event).__struct_config__.tag)
