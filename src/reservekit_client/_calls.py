"""Every REST operation as a ``Call``: method, path, query, body and the type its answer decodes to.

Both clients (sync and async) send the same ``Call`` objects, so an operation is described once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from reservekit_client.models import (
    Account,
    AccountWithKey,
    AuditEvent,
    ChainReport,
    ChangesPage,
    Flag,
    Key,
    KeysAsOf,
    KeyUsage,
    KeyWithSecret,
    LeakReceipt,
    Page,
    Service,
    UsageRow,
    Verification,
)

T = TypeVar("T")
UNSET: Any = object()


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    returns: type[T]
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # A POST that only asks a question (verify) is not a write: no Idempotency-Key, and a retry is safe.
    write: bool = True


def _id(value: str) -> str:
    return quote(value, safe="")


def _query(**values: Any) -> dict[str, Any]:
    """Drop unset filters; timestamps go out as RFC 3339."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items() if v is not None}


def _body(**values: Any) -> dict[str, Any]:
    """Only what the caller set: ``None`` is sent as JSON null only where it means something."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items() if v is not UNSET}


# Accounts (platform:admin)
def list_accounts(cursor: str | None, limit: int | None) -> Call[Page[Account, str]]:
    return Call("GET", "/v1/accounts", Page[Account, str], params=_query(cursor=cursor, limit=limit))


def open_account(name: str, plan: str, operator: bool) -> Call[AccountWithKey]:
    return Call("POST", "/v1/accounts", AccountWithKey, body=_body(name=name, plan=plan, operator=operator))


def get_account(account_id: str) -> Call[Account]:
    return Call("GET", f"/v1/accounts/{_id(account_id)}", Account)


def change_plan(account_id: str, plan: str) -> Call[Account]:
    return Call("PATCH", f"/v1/accounts/{_id(account_id)}", Account, body={"plan": plan})


# Keys
def create_key(
    name: str | None, domains: Sequence[str] | None, scopes: Sequence[str] | None, expires_at: datetime | None
) -> Call[KeyWithSecret]:
    body = _body(
        name=name if name is not None else UNSET,
        domains=list(domains) if domains is not None else UNSET,
        scopes=list(scopes) if scopes is not None else UNSET,
        expires_at=expires_at if expires_at is not None else UNSET,
    )
    return Call("POST", "/v1/api-keys", KeyWithSecret, body=body)


def list_keys(cursor: str | None, limit: int | None) -> Call[Page[Key, str]]:
    return Call("GET", "/v1/api-keys", Page[Key, str], params=_query(cursor=cursor, limit=limit))


def get_key(key_id: str) -> Call[Key]:
    return Call("GET", f"/v1/api-keys/{_id(key_id)}", Key)


def revoke_key(key_id: str, reason: str | None) -> Call[Key]:
    body = _body(reason=reason) if reason is not None else {}
    return Call("POST", f"/v1/api-keys/{_id(key_id)}/revoke", Key, body=body)


def rotate_key(key_id: str, grace_period_seconds: int) -> Call[KeyWithSecret]:
    body = {"grace_period_seconds": grace_period_seconds}
    return Call("POST", f"/v1/api-keys/{_id(key_id)}/rotate", KeyWithSecret, body=body)


def key_usage(
    key_id: str, since: datetime | None, until: datetime | None, bucket: str | None
) -> Call[KeyUsage]:
    params = _query(since=since, until=until, bucket=bucket)
    return Call("GET", f"/v1/api-keys/{_id(key_id)}/usage", KeyUsage, params=params)


# Services
def list_services(cursor: str | None, limit: int | None) -> Call[Page[Service, str]]:
    return Call("GET", "/v1/services", Page[Service, str], params=_query(cursor=cursor, limit=limit))


def create_service(name: str, duration_minutes: int, description: str | None) -> Call[Service]:
    body = _body(name=name, duration_minutes=duration_minutes, description=description)
    return Call("POST", "/v1/services", Service, body=body)


def get_service(service_id: str) -> Call[Service]:
    return Call("GET", f"/v1/services/{_id(service_id)}", Service)


def update_service(service_id: str, name: Any, duration_minutes: Any, description: Any) -> Call[Service]:
    body = _body(name=name, duration_minutes=duration_minutes, description=description)
    return Call("PATCH", f"/v1/services/{_id(service_id)}", Service, body=body)


def delete_service(service_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/services/{_id(service_id)}", type(None))


# Audit
def audit_events(cursor: str | None, limit: int | None, **filters: Any) -> Call[Page[AuditEvent, str]]:
    params = _query(cursor=cursor, limit=limit, **filters)
    return Call("GET", "/v1/audit/events", Page[AuditEvent, str], params=params)


def audit_usage(cursor: str | None, limit: int | None, **filters: Any) -> Call[Page[UsageRow, str]]:
    params = _query(cursor=cursor, limit=limit, **filters)
    return Call("GET", "/v1/audit/usage", Page[UsageRow, str], params=params)


def verify_chain() -> Call[ChainReport]:
    return Call("GET", "/v1/audit/verify", ChainReport)


def keys_as_of(as_of: datetime, account_id: str | None) -> Call[KeysAsOf]:
    return Call("GET", "/v1/audit/keys", KeysAsOf, params=_query(as_of=as_of, account_id=account_id))


def list_flags(cursor: str | None, limit: int | None, **filters: Any) -> Call[Page[Flag, str]]:
    return Call(
        "GET", "/v1/audit/flags", Page[Flag, str], params=_query(cursor=cursor, limit=limit, **filters)
    )


def get_flag(flag_id: str) -> Call[Flag]:
    return Call("GET", f"/v1/audit/flags/{_id(flag_id)}", Flag)


def resolve_flag(flag_id: str, resolution: str, note: str | None) -> Call[Flag]:
    body = _body(resolution=resolution, note=note if note is not None else UNSET)
    return Call("POST", f"/v1/audit/flags/{_id(flag_id)}/resolve", Flag, body=body)


def report_leak(key: str, source: str | None) -> Call[LeakReceipt]:
    body = _body(key=key, source=source if source is not None else UNSET)
    return Call("POST", "/v1/leaks", LeakReceipt, body=body)


# For other services
def verify_key(
    key: str | None,
    *,
    required_scopes: Sequence[str] | None = None,
    origin: str | None = None,
    referer: str | None = None,
    client_ip: str | None = None,
    cost: int = 1,
) -> Call[Verification]:
    body = _body(
        key=key,
        required_scopes=list(required_scopes) if required_scopes else UNSET,
        origin=origin if origin is not None else UNSET,
        referer=referer if referer is not None else UNSET,
        client_ip=client_ip if client_ip is not None else UNSET,
        cost=cost,
    )
    return Call("POST", "/v1/keys/verify", Verification, body=body, write=False)


def poll_changes(after: int | None, wait: float) -> Call[ChangesPage]:
    params = _query(after=after, wait=wait)
    return Call("GET", "/v1/keys/changes", ChangesPage, params=params, headers={"Accept": "application/json"})
