"""The team of an account: invitations, role changes and removals. Pure decisions over folded state.

An invitation is its own stream (``inv_…``): invited → accepted (which adds the member) or revoked.
It expires ``INVITATION_TTL`` after it was made and can be used once. An account always keeps at least
one owner: the last owner can neither be removed nor given another role.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import msgspec

from reservekit.domain.errors import Conflict, NotPermitted
from reservekit.domain.events import (
    Event,
    MemberAdded,
    MemberInvitationAccepted,
    MemberInvitationRevoked,
    MemberInvited,
    MemberRemoved,
    MemberRoleChanged,
    MemberSignedIn,
    RecordedEvent,
)
from reservekit.domain.members import MemberState, normalise_email
from reservekit.domain.roles import OWNER, check_role

INVITATION_TTL = timedelta(days=7)


class InvitationState(msgspec.Struct, frozen=True, kw_only=True):
    invitation_id: str
    account_id: str
    email: str
    role: str
    invited_at: datetime
    expires_at: datetime
    status: str  # "pending", "accepted", "revoked"
    version: int
    member_id: str | None = None

    def status_at(self, now: datetime) -> str:
        return "expired" if self.status == "pending" and now >= self.expires_at else self.status


def fold_invitation(history: Iterable[RecordedEvent]) -> InvitationState | None:
    state: InvitationState | None = None
    for recorded in history:
        event = recorded.data
        version = recorded.stream_version
        if isinstance(event, MemberInvited):
            state = InvitationState(
                invitation_id=event.invitation_id,
                account_id=event.account_id,
                email=event.email,
                role=event.role,
                invited_at=recorded.recorded_at,
                expires_at=event.expires_at,
                status="pending",
                version=version,
            )
        elif state is None:
            continue
        elif isinstance(event, MemberInvitationAccepted):
            state = msgspec.structs.replace(
                state, status="accepted", member_id=event.member_id, version=version
            )
        elif isinstance(event, MemberInvitationRevoked):
            state = msgspec.structs.replace(state, status="revoked", version=version)
    return state


class InvitationUnusable(NotPermitted):
    """One message for an unknown, used, revoked or expired link: the link is all the invitee has."""

    def __init__(self) -> None:
        super().__init__(
            "This invitation link is not valid: it was used, withdrawn or has expired. "
            "Ask an owner of the account for a new one."
        )


def decide_invite(
    *, invitation_id: str, account_id: str, email: str, role: str, now: datetime
) -> list[Event]:
    return [
        MemberInvited(
            invitation_id=invitation_id,
            account_id=account_id,
            email=normalise_email(email),
            role=check_role(role),
            expires_at=now + INVITATION_TTL,
        )
    ]


def decide_accept(
    invitation: InvitationState | None, *, member_id: str, now: datetime
) -> tuple[list[Event], list[Event]]:
    """Events for the invitation's stream and for the new member's stream (appended together)."""
    if invitation is None or invitation.status_at(now) != "pending":
        raise InvitationUnusable()
    accepted = MemberInvitationAccepted(
        invitation_id=invitation.invitation_id, account_id=invitation.account_id, member_id=member_id
    )
    added = MemberAdded(
        member_id=member_id,
        account_id=invitation.account_id,
        email=invitation.email,
        role=invitation.role,
        invitation_id=invitation.invitation_id,
    )
    signed_in = MemberSignedIn(member_id=member_id, account_id=invitation.account_id)
    return [accepted], [added, signed_in]


def decide_revoke_invitation(invitation: InvitationState, *, now: datetime) -> list[Event]:
    if invitation.status_at(now) != "pending":
        raise Conflict(f"invitation {invitation.invitation_id} is {invitation.status_at(now)}, not pending")
    return [MemberInvitationRevoked(invitation_id=invitation.invitation_id, account_id=invitation.account_id)]


def _other_owners(member: MemberState, team: Iterable[MemberState]) -> int:
    return sum(1 for m in team if m.role == OWNER and not m.removed and m.member_id != member.member_id)


def decide_change_role(member: MemberState, role: str, team: Iterable[MemberState]) -> list[Event]:
    """``team``: the account's members as folded from their streams (the last-owner rule)."""
    role = check_role(role)
    if role == member.role:
        return []
    if member.role == OWNER and _other_owners(member, team) == 0:
        raise Conflict("the account's last owner keeps the owner role; make someone else owner first")
    return [
        MemberRoleChanged(
            member_id=member.member_id, account_id=member.account_id, role=role, previous_role=member.role
        )
    ]


def decide_remove(member: MemberState, team: Iterable[MemberState]) -> list[Event]:
    if member.removed:
        return []
    if member.role == OWNER and _other_owners(member, team) == 0:
        raise Conflict("the account's last owner cannot be removed; make someone else owner first")
    return [MemberRemoved(member_id=member.member_id, account_id=member.account_id, email=member.email)]
