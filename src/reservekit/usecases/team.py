"""Invite members, accept an invitation, withdraw one, change a member's role, remove a member.

The log records each step (``member_invited``, ``member_invitation_accepted`` with ``member_added``,
``member_invitation_revoked``, ``member_role_changed``, ``member_removed``); the invitation link's token
and the members' credentials and sessions live in the ``MemberDirectory`` beside it. Who may call these
(owners only) is the dashboard's check (``domain/roles.py``); the handlers keep the account's own rules:
a member of another account is not found, and an account always keeps an owner.
"""

from __future__ import annotations

import secrets

from reservekit.clock import to_micros
from reservekit.domain.errors import ConcurrentChange, Conflict, NotFound
from reservekit.domain.events import Metadata
from reservekit.domain.members import MemberState, check_new_password, fold_member
from reservekit.domain.roles import OWNER
from reservekit.domain.team import (
    INVITATION_TTL,
    InvitationState,
    InvitationUnusable,
    decide_accept,
    decide_change_role,
    decide_invite,
    decide_remove,
    decide_revoke_invitation,
    fold_invitation,
)
from reservekit.ids import new_id
from reservekit.usecases.accounts import load_account
from reservekit.usecases.commands import (
    AcceptInvitation,
    ChangeMemberRole,
    InviteMember,
    IssuedInvitation,
    RemoveMember,
    RevokeInvitation,
    SignedIn,
)
from reservekit.usecases.dependencies import Handled, HandlerDependencies
from reservekit.usecases.members import load_member
from reservekit.usecases.ports import ConcurrencyConflict, Credential, MemberDirectory, Passwords, StreamWrite


def _ports(deps: HandlerDependencies) -> tuple[MemberDirectory, Passwords]:
    if deps.members is None or deps.passwords is None:
        raise RuntimeError("members are not configured in this composition root")
    return deps.members, deps.passwords


async def load_invitation(
    deps: HandlerDependencies, invitation_id: str, *, account_id: str | None
) -> InvitationState:
    state = None
    if invitation_id.startswith("inv_"):
        state = fold_invitation(await deps.store.read_stream(invitation_id))
    if state is None or (account_id is not None and state.account_id != account_id):
        raise NotFound(f"invitation {invitation_id} not found")
    return state


async def _team_member(deps: HandlerDependencies, account_id: str, member_id: str) -> MemberState:
    """Another account's member, or a removed one, is reported like a missing one."""
    member = fold_member(await deps.store.read_stream(member_id)) if member_id.startswith("mem_") else None
    if member is None or member.removed or member.account_id != account_id:
        raise NotFound(f"member {member_id} not found")
    return member


def _owners_relied_on(member: MemberState, team: list[MemberState]) -> list[StreamWrite]:
    """When an owner steps down or leaves, the other owners the last-owner rule counted, as writes of
    no events at the versions read: the append then fails if any of them changed meanwhile (two owners
    demoting each other at once would otherwise both pass the rule and leave the account with none)."""
    if member.role != OWNER:
        return []
    return [
        StreamWrite(other.member_id, other.version, [])
        for other in team
        if other.role == OWNER and other.member_id != member.member_id
    ]


async def _team(deps: HandlerDependencies, account_id: str) -> list[MemberState]:
    """The account's members folded from their own streams (the read model only names them)."""
    members, _ = _ports(deps)
    team = []
    for member_id in await members.members_of(account_id):
        member = fold_member(await deps.store.read_stream(member_id))
        if member is not None and member.account_id == account_id and not member.removed:
            team.append(member)
    return team


async def handle_invite_member(
    command: InviteMember, deps: HandlerDependencies, metadata: Metadata
) -> Handled[IssuedInvitation]:
    members, _ = _ports(deps)
    await load_account(deps.store, command.account_id)
    invitation_id = new_id("inv")
    now = deps.clock.now()
    events = decide_invite(
        invitation_id=invitation_id,
        account_id=command.account_id,
        email=command.email,
        role=command.role,
        now=now,
    )
    token = secrets.token_urlsafe(32)
    # The token row first: an invitation the log shows always has a working link.
    await members.save_invitation(token, invitation_id, command.account_id, to_micros(now + INVITATION_TTL))
    try:
        recorded = await deps.store.append([StreamWrite(invitation_id, 0, events)], metadata)
    except BaseException:
        await members.forget_invitation(invitation_id)
        raise
    state = fold_invitation(recorded)
    assert state is not None
    return Handled(IssuedInvitation(state, token), recorded[-1].position)


async def handle_accept_invitation(
    command: AcceptInvitation, deps: HandlerDependencies, metadata: Metadata
) -> Handled[SignedIn]:
    members, passwords = _ports(deps)
    invitation_id = await members.invitation_for(command.token)
    invitation = None
    if invitation_id is not None:
        invitation = fold_invitation(await deps.store.read_stream(invitation_id))
    member_id = new_id("mem")
    for_invitation, for_member = decide_accept(invitation, member_id=member_id, now=deps.clock.now())
    assert invitation is not None
    check_new_password(command.password)
    credential = Credential(member_id, invitation.account_id, await passwords.hash(command.password))
    if not await members.claim_email(invitation.email, credential):
        raise Conflict("this email already belongs to a member of an account; sign in instead", field="email")
    as_member = Metadata(
        actor_account_id=invitation.account_id,
        actor_member_id=member_id,
        request_id=metadata.request_id,
        client_ip=metadata.client_ip,
        user_agent=metadata.user_agent,
        source=metadata.source,
    )
    try:
        recorded = await deps.store.append(
            [
                StreamWrite(invitation.invitation_id, invitation.version, for_invitation),
                StreamWrite(member_id, 0, for_member),
            ],
            as_member,
        )
    except ConcurrencyConflict:
        await members.release_email(invitation.email)
        raise InvitationUnusable() from None  # the same link, used twice at once: the other one won
    except BaseException:
        await members.release_email(invitation.email)
        raise
    await members.forget_invitation(invitation.invitation_id)
    member = fold_member(e for e in recorded if e.stream_id == member_id)
    assert member is not None
    token = await members.open_session(member_id, member.account_id)
    return Handled(SignedIn(member, token), recorded[-1].position)


async def handle_revoke_invitation(
    command: RevokeInvitation, deps: HandlerDependencies, metadata: Metadata
) -> Handled[None]:
    members, _ = _ports(deps)
    invitation = await load_invitation(deps, command.invitation_id, account_id=command.account_id)
    events = decide_revoke_invitation(invitation, now=deps.clock.now())
    try:
        recorded = await deps.store.append(
            [StreamWrite(invitation.invitation_id, invitation.version, events)], metadata
        )
    except ConcurrencyConflict:
        raise ConcurrentChange(f"invitation {command.invitation_id} changed concurrently; retry") from None
    await members.forget_invitation(invitation.invitation_id)
    return Handled(None, recorded[-1].position)


async def handle_change_member_role(
    command: ChangeMemberRole, deps: HandlerDependencies, metadata: Metadata
) -> Handled[MemberState]:
    member = await _team_member(deps, command.account_id, command.member_id)
    team = await _team(deps, command.account_id)
    events = decide_change_role(member, command.role, team)
    if not events:
        return Handled(member)
    try:
        recorded = await deps.store.append(
            [StreamWrite(member.member_id, member.version, events), *_owners_relied_on(member, team)],
            metadata,
        )
    except ConcurrencyConflict:
        raise ConcurrentChange(f"member {command.member_id} changed concurrently; retry") from None
    return Handled(await load_member(deps, member.member_id), recorded[-1].position)


async def handle_remove_member(
    command: RemoveMember, deps: HandlerDependencies, metadata: Metadata
) -> Handled[None]:
    """The event first, then the sessions and credential: the dashboard also refuses a removed member
    by the log, so a crash between the two never leaves a removed member signed in."""
    members, _ = _ports(deps)
    member = await _team_member(deps, command.account_id, command.member_id)
    team = await _team(deps, command.account_id)
    events = decide_remove(member, team)
    try:
        recorded = await deps.store.append(
            [StreamWrite(member.member_id, member.version, events), *_owners_relied_on(member, team)],
            metadata,
        )
    except ConcurrencyConflict:
        raise ConcurrentChange(f"member {command.member_id} changed concurrently; retry") from None
    await members.remove_member(member.member_id)
    return Handled(None, recorded[-1].position)
