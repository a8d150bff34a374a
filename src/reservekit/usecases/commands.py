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
from reservekit.domain.members import MemberState
from reservekit.domain.team import InvitationState

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


class UpdateKey(Command[KeyState], frozen=True, kw_only=True):
    """Replace a key's name, domains, scopes and expiry. ``grantable`` as for ``CreateKey``."""

    account_id: str | None
    key_id: str
    name: str | None = None
    domains: Sequence[str] | None = None
    scopes: Sequence[str] | None = None
    expires_at: datetime | None = None
    grantable: frozenset[str] | None = None


class SignedUp(msgspec.Struct, frozen=True):
    account: AccountState
    member: MemberState


class SignedIn(msgspec.Struct, frozen=True):
    """``session_token`` goes into the cookie and nowhere else; the server keeps only its hash."""

    member: MemberState
    session_token: str


class SignUp(Command[SignedUp], frozen=True, kw_only=True):
    """Open a ``free`` account with this person as its owner (the dashboard's sign-up form)."""

    email: str
    password: str = msgspec.field(default="")

    def __repr__(self) -> str:  # never print the password in a log or a traceback
        return f"SignUp(email={self.email!r})"


class AddMember(Command[MemberState], frozen=True, kw_only=True):
    """An operator adds a member to an existing account (the CLI; the way in when sign-up is closed)."""

    account_id: str
    email: str
    password: str = msgspec.field(default="")
    role: str = "owner"

    def __repr__(self) -> str:
        return f"AddMember(account_id={self.account_id!r}, email={self.email!r})"


class SignIn(Command[SignedIn], frozen=True, kw_only=True):
    email: str
    password: str = msgspec.field(default="")

    def __repr__(self) -> str:
        return f"SignIn(email={self.email!r})"


class SignOut(Command[None], frozen=True, kw_only=True):
    member_id: str
    account_id: str
    session_token: str

    def __repr__(self) -> str:
        return f"SignOut(member_id={self.member_id!r})"


class ChangePassword(Command[str], frozen=True, kw_only=True):
    """Ends every session of the member; returns a fresh session token for the one who changed it."""

    member_id: str
    email: str
    current_password: str
    new_password: str

    def __repr__(self) -> str:
        return f"ChangePassword(member_id={self.member_id!r})"


class IssuedInvitation(msgspec.Struct, frozen=True):
    """``token`` goes into the link the owner copies (and the mail) and nowhere else."""

    invitation: InvitationState
    token: str


class InviteMember(Command[IssuedInvitation], frozen=True, kw_only=True):
    account_id: str
    email: str
    role: str


class AcceptInvitation(Command[SignedIn], frozen=True, kw_only=True):
    """The invitee sets a password: they become a member with the invited role and are signed in."""

    token: str
    password: str = msgspec.field(default="")

    def __repr__(self) -> str:
        return "AcceptInvitation(token=…)"


class RevokeInvitation(Command[None], frozen=True, kw_only=True):
    account_id: str
    invitation_id: str


class ChangeMemberRole(Command[MemberState], frozen=True, kw_only=True):
    account_id: str
    member_id: str
    role: str


class RemoveMember(Command[None], frozen=True, kw_only=True):
    """Ends the member's sessions at once and deletes their credential (they can be invited again)."""

    account_id: str
    member_id: str
