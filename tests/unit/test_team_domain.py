"""Roles and the team's pure rules: the permission table, invitations, role changes, the last owner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reservekit.domain.errors import Conflict, InvalidInput
from reservekit.domain.events import (
    MemberAdded,
    MemberInvitationAccepted,
    MemberInvited,
    MemberRemoved,
    MemberRoleChanged,
    Metadata,
    RecordedEvent,
)
from reservekit.domain.members import MemberState, fold_member
from reservekit.domain.roles import AUDITOR, DEVELOPER, OWNER, can, check_role, permissions
from reservekit.domain.team import (
    INVITATION_TTL,
    InvitationUnusable,
    decide_accept,
    decide_change_role,
    decide_invite,
    decide_remove,
    decide_revoke_invitation,
    fold_invitation,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _recorded(stream: str, version: int, data: object) -> RecordedEvent:
    return RecordedEvent(
        position=version,
        stream_id=stream,
        stream_version=version,
        type="x",
        data=data,  # type: ignore[arg-type]
        metadata=Metadata(),
        recorded_at=NOW,
        prev_hash="0" * 64,
        hash="0" * 64,
    )


def _member(member_id: str, role: str, *, removed: bool = False) -> MemberState:
    return MemberState(
        member_id=member_id,
        account_id="acct_a",
        email=f"{member_id}@x.io",
        role=role,
        version=1,
        removed=removed,
    )


@pytest.mark.parametrize(
    ("role", "operator", "allowed", "refused"),
    [
        (OWNER, False, {"keys:manage", "team:manage", "webhooks:manage", "security:view"}, {"accounts:view"}),
        (
            DEVELOPER,
            False,
            {"keys:view", "keys:manage", "usage:view", "webhooks:view"},
            {"team:manage", "webhooks:manage", "security:view"},
        ),
        (
            AUDITOR,
            False,
            {"keys:view", "usage:view", "security:view", "security:resolve"},
            {"keys:manage", "team:manage", "webhooks:manage"},
        ),
        (OWNER, True, {"accounts:view", "accounts:manage"}, set()),
        (AUDITOR, True, {"accounts:view"}, {"accounts:manage", "keys:manage"}),
        ("root", True, set(), {"keys:view", "accounts:view"}),
    ],
)
def test_the_permission_table(role: str, operator: bool, allowed: set[str], refused: set[str]) -> None:
    assert allowed <= permissions(role, operator=operator)
    assert not refused & permissions(role, operator=operator)
    assert all(can(role, p, operator=operator) for p in allowed)


def test_only_the_three_roles_exist() -> None:
    assert [check_role(r) for r in (OWNER, DEVELOPER, AUDITOR)] == ["owner", "developer", "auditor"]
    for bad in ("admin", "", None, "Owner"):
        with pytest.raises(InvalidInput) as refused:
            check_role(bad)
        assert refused.value.field == "role"


def test_an_invitation_is_pending_for_seven_days_then_used_once() -> None:
    [invited] = decide_invite(
        invitation_id="inv_1", account_id="acct_a", email=" Dev@X.io ", role=DEVELOPER, now=NOW
    )
    assert isinstance(invited, MemberInvited)
    assert invited.email == "dev@x.io"
    assert invited.expires_at == NOW + INVITATION_TTL == NOW + timedelta(days=7)
    state = fold_invitation([_recorded("inv_1", 1, invited)])
    assert state is not None
    assert state.status_at(NOW + timedelta(days=7) - timedelta(seconds=1)) == "pending"
    assert state.status_at(NOW + timedelta(days=7)) == "expired"
    for_invitation, for_member = decide_accept(state, member_id="mem_1", now=NOW)
    assert isinstance(for_invitation[0], MemberInvitationAccepted)
    added = for_member[0]
    assert isinstance(added, MemberAdded)
    assert (added.role, added.invitation_id, added.email) == (DEVELOPER, "inv_1", "dev@x.io")
    used = fold_invitation([_recorded("inv_1", 1, invited), _recorded("inv_1", 2, for_invitation[0])])
    assert used is not None
    assert used.status == "accepted"
    assert used.member_id == "mem_1"
    for unusable, at in [(used, NOW), (state, NOW + timedelta(days=8)), (None, NOW)]:
        with pytest.raises(InvitationUnusable):
            decide_accept(unusable, member_id="mem_2", now=at)
    with pytest.raises(Conflict):
        decide_revoke_invitation(used, now=NOW)
    with pytest.raises(InvalidInput):
        decide_invite(invitation_id="inv_2", account_id="acct_a", email="x@x.io", role="admin", now=NOW)


def test_the_last_owner_keeps_the_role_and_the_account() -> None:
    alone = _member("mem_o", OWNER)
    team = [alone, _member("mem_d", DEVELOPER), _member("mem_gone", OWNER, removed=True)]
    with pytest.raises(Conflict):
        decide_change_role(alone, AUDITOR, team)
    with pytest.raises(Conflict):
        decide_remove(alone, team)
    second = _member("mem_o2", OWNER)
    [changed] = decide_change_role(alone, AUDITOR, [*team, second])
    assert changed == MemberRoleChanged(
        member_id="mem_o", account_id="acct_a", role=AUDITOR, previous_role=OWNER
    )
    assert decide_change_role(alone, OWNER, team) == []
    assert isinstance(decide_remove(team[1], team)[0], MemberRemoved)
    assert decide_remove(team[2], team) == []


def test_a_member_folds_role_changes_and_removal() -> None:
    added = MemberAdded(member_id="mem_1", account_id="acct_a", email="a@x.io", role=DEVELOPER)
    changed = MemberRoleChanged(member_id="mem_1", account_id="acct_a", role=AUDITOR, previous_role=DEVELOPER)
    removed = MemberRemoved(member_id="mem_1", account_id="acct_a", email="a@x.io")
    state = fold_member([_recorded("mem_1", 1, added), _recorded("mem_1", 2, changed)])
    assert state is not None
    assert (state.role, state.removed, state.version) == (AUDITOR, False, 2)
    gone = fold_member(
        [_recorded("mem_1", 1, added), _recorded("mem_1", 2, changed), _recorded("mem_1", 3, removed)]
    )
    assert gone is not None
    assert (gone.removed, gone.version) == (True, 3)
