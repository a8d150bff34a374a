"""Every write the key authority accepts, as data: one msgspec Struct per command.

The REST API, the CLI and any later entry point build one of these and hand it to
``Application.execute``; nothing else writes. ``Command[R]`` names the result type ``R`` the
command's handler returns, so ``execute`` is typed per command without a table of overloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Generic, TypeVar

import msgspec

from reservekit.domain.accounts import AccountState
from reservekit.domain.keys import KeyState

R = TypeVar("R")


class Command(msgspec.Struct, Generic[R], frozen=True, kw_only=True):
    """A request to change the log. ``R`` is what its handler returns."""


class IssuedKey(msgspec.Struct, frozen=True):
    """A key together with its plaintext: exists only on the way out of a create or rotate."""

    key: KeyState
    secret: str


class OpenedAccount(msgspec.Struct, frozen=True):
    account: AccountState
    first_key: IssuedKey


class RotatedKey(msgspec.Struct, frozen=True):
    old: KeyState
    new: IssuedKey


class OpenAccount(Command[OpenedAccount], frozen=True, kw_only=True):
    """Open an account together with its first key (one append: never an account nobody can use)."""

    name: str
    plan: str = "free"
    operator: bool = False


class ChangePlan(Command[AccountState], frozen=True, kw_only=True):
    account_id: str
    plan: str


class CreateKey(Command[IssuedKey], frozen=True, kw_only=True):
    """``grantable``: the scopes the creating key holds (None: the CLI, which may grant any)."""

    account_id: str
    name: str | None = None
    domains: Sequence[str] | None = None
    scopes: Sequence[str] | None = None
    expires_at: datetime | None = None
    grantable: frozenset[str] | None = None


class RevokeKey(Command[KeyState], frozen=True, kw_only=True):
    """``account_id``: the caller's account (None: the CLI, which may revoke any key)."""

    account_id: str | None
    key_id: str
    reason: str | None = None


class RotateKey(Command[RotatedKey], frozen=True, kw_only=True):
    account_id: str | None
    key_id: str
    grace_period_seconds: int = 0


class ReportLeak(Command[bool], frozen=True, kw_only=True):
    """The result (an event was written) is for tests and logs; it must never reach the reporter."""

    secret: str
    source: str | None = None


class ResolveFlag(Command[None], frozen=True, kw_only=True):
    """``account_id``: the caller's account (None: platform:admin, who may resolve any flag)."""

    flag_id: str
    account_id: str | None
    resolution: str
    note: str | None = None
