"""Members: the people who sign in to the dashboard for an account. Pure rules, no password hashing.

The domain sees an email and decides events; passwords are checked for length here (a rule) and hashed
by an adapter (``reservekit.members.passwords``), so no password material ever reaches an event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import msgspec

from reservekit.domain.errors import InvalidInput, NotPermitted
from reservekit.domain.events import MemberAdded, MemberRemoved, MemberRoleChanged, RecordedEvent
from reservekit.domain.roles import check_role

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
MAX_EMAIL_CHARS = 254
# Deliberately loose (one @, a dot in the domain, no spaces): the address is a login name, not a mailbox
# we deliver to, and stricter patterns refuse real addresses.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class MemberState(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    account_id: str
    email: str
    role: str
    version: int
    removed: bool = False


def fold_member(history: Iterable[RecordedEvent]) -> MemberState | None:
    state: MemberState | None = None
    for recorded in history:
        event = recorded.data
        if isinstance(event, MemberAdded):
            state = MemberState(
                member_id=event.member_id,
                account_id=event.account_id,
                email=event.email,
                role=event.role,
                version=recorded.stream_version,
            )
        elif state is None:
            continue
        elif isinstance(event, MemberRoleChanged):
            state = msgspec.structs.replace(state, role=event.role, version=recorded.stream_version)
        elif isinstance(event, MemberRemoved):
            state = msgspec.structs.replace(state, removed=True, version=recorded.stream_version)
        else:
            state = msgspec.structs.replace(state, version=recorded.stream_version)
    return state


def normalise_email(raw: str | None) -> str:
    email = (raw or "").strip().lower()
    if not email:
        raise InvalidInput("email is required", field="email")
    if len(email) > MAX_EMAIL_CHARS or not _EMAIL.match(email):
        raise InvalidInput("email must look like name@example.com", field="email")
    return email


def check_new_password(password: str | None, *, field: str = "password") -> str:
    if password is None or len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"{field} must be at least {MIN_PASSWORD_CHARS} characters", field=field)
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput(f"{field} must be at most {MAX_PASSWORD_CHARS} characters", field=field)
    return password


def decide_add_member(
    *, member_id: str, account_id: str, email: str, role: str = "owner"
) -> list[MemberAdded]:
    return [
        MemberAdded(
            member_id=member_id, account_id=account_id, email=normalise_email(email), role=check_role(role)
        )
    ]


class SignInRefused(NotPermitted):
    """Unknown email and wrong password alike: one message, so the answer tells an attacker nothing."""

    def __init__(self) -> None:
        super().__init__("That email and password do not match an account.")


class TooManyAttempts(NotPermitted):
    def __init__(self) -> None:
        super().__init__("Too many sign-in attempts. Wait a minute and try again.")
