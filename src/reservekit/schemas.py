"""Wire shapes shared by the API and the CLI (msgspec Structs; the only place a secret is serialised)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from reservekit.domain.accounts import AccountState
from reservekit.domain.keys import KeyState, KeyStatus


class AccountOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    plan: str
    operator: bool
    created_at: datetime


class KeyOut(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    name: str | None
    prefix: str
    last4: str
    status: KeyStatus
    scopes: list[str]
    domains: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    rotated_from: str | None
    rotated_to: str | None


class KeyWithSecret(KeyOut, kw_only=True):
    """Returned by create and rotate only: ``secret`` is shown this once and never stored."""

    secret: str


class AccountWithKey(msgspec.Struct, kw_only=True):
    account: AccountOut
    key: KeyWithSecret


def account_out(state: AccountState) -> AccountOut:
    return AccountOut(
        id=state.account_id,
        name=state.name,
        plan=state.plan,
        operator=state.operator,
        created_at=state.opened_at,
    )


def key_out(state: KeyState, *, now: datetime, last_used_at: datetime | None = None) -> KeyOut:
    return KeyOut(
        id=state.key_id,
        account_id=state.account_id,
        name=state.name,
        prefix=state.prefix,
        last4=state.last4,
        status=state.status(now),
        scopes=list(state.scopes),
        domains=list(state.domains),
        created_at=state.created_at,
        expires_at=state.expires_at,
        revoked_at=state.revoked_at,
        last_used_at=last_used_at,
        rotated_from=state.rotated_from,
        rotated_to=state.rotated_to,
    )


def key_with_secret(state: KeyState, secret: str, *, now: datetime) -> KeyWithSecret:
    fields = msgspec.structs.asdict(key_out(state, now=now))
    return msgspec.convert({**fields, "secret": secret}, KeyWithSecret)
