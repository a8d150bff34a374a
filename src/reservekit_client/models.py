"""The API's wire shapes as msgspec Structs. Unknown fields are ignored, so newer servers stay readable."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import msgspec

T = TypeVar("T")
C = TypeVar("C")
KeyStatus = Literal["active", "revoked", "expired"]


class Page(msgspec.Struct, Generic[T, C]):
    data: list[T]
    next_cursor: C | None


class Account(msgspec.Struct, kw_only=True):
    id: str
    name: str
    plan: str
    operator: bool
    created_at: datetime


class Key(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    name: str | None
    prefix: str
    last4: str
    status: str
    scopes: list[str]
    domains: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    rotated_from: str | None
    rotated_to: str | None


class KeyWithSecret(Key, kw_only=True):
    """Create and rotate only: ``secret`` is shown this once; store it, the authority cannot. It is
    None only when the answer is a replay of an earlier try (``Idempotent-Replayed``), which withholds it."""

    secret: str | None = None

    def __repr__(self) -> str:  # never print a secret by accident
        return f"KeyWithSecret(id={self.id!r}, prefix={self.prefix!r}, secret='…')"


class AccountWithKey(msgspec.Struct, kw_only=True):
    account: Account
    key: KeyWithSecret


class Service(msgspec.Struct, kw_only=True):
    id: str
    name: str
    duration_minutes: int
    description: str | None
    created_at: datetime
    updated_at: datetime


class UsageBucket(msgspec.Struct, kw_only=True):
    start: datetime
    counts: dict[str, int]
    total: int


class KeyUsage(msgspec.Struct, kw_only=True):
    key_id: str
    bucket: str
    since: datetime
    until: datetime
    data: list[UsageBucket]
    totals: dict[str, int]
    total: int


class AuditEvent(msgspec.Struct, kw_only=True):
    position: int
    stream_id: str
    stream_version: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    prev_hash: str
    hash: str


class UsageRow(msgspec.Struct, kw_only=True):
    position: int
    occurred_at: datetime
    request_id: str
    key_id: str | None
    account_id: str | None
    client_ip: str
    origin: str | None
    method: str
    route: str
    status: int
    outcome: str
    detail: str | None
    latency_ms: float


class ChainReport(msgspec.Struct, kw_only=True):
    """``count`` and the head are shown to operators only (log-wide facts)."""

    ok: bool
    first_bad_position: int | None = None
    reason: str | None = None
    count: int | None = None
    head_position: int | None = None
    head_hash: str | None = None


class KeysAsOf(msgspec.Struct, kw_only=True):
    as_of: datetime
    data: list[Key]


class FlagResolution(msgspec.Struct, kw_only=True):
    resolution: str
    note: str | None
    resolved_at: datetime
    resolved_by: str | None
    resolved_by_account: str | None


class Flag(msgspec.Struct, kw_only=True):
    id: str
    rule: str
    severity: str
    status: str
    account_id: str | None
    key_id: str | None
    client_ip: str | None
    subject: str
    first_seen: datetime
    last_seen: datetime
    hits: int
    evidence: dict[str, Any]
    resolution: FlagResolution | None


class LeakReceipt(msgspec.Struct, kw_only=True):
    status: str
    detail: str


class RateLimit(msgspec.Struct, kw_only=True):
    limit: int
    remaining: int
    reset: int


class Verification(msgspec.Struct, kw_only=True):
    """``POST /v1/keys/verify``'s answer: the SPEC §4 outcome (``code``/``title``/``status``)."""

    valid: bool
    code: str
    title: str
    status: int
    key_id: str | None
    account_id: str | None
    scopes: list[str]
    domains: list[str]
    expires_at: datetime | None
    ratelimit: RateLimit | None
    retry_after: int | None
    position: int


class KeyChange(msgspec.Struct, kw_only=True):
    position: int
    type: str
    account_id: str
    key_id: str | None
    recorded_at: datetime
    plan: str | None = None
    new_key_id: str | None = None
    grace_ends_at: datetime | None = None


class ChangesPage(msgspec.Struct, kw_only=True):
    changes: list[KeyChange]
    next: int
