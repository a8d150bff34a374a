"""An account always keeps an owner, also when two owners step down at once on two replicas.

The last-owner rule reads the other owners' streams; the interleaving is forced: replica A reads the
team and waits while replica B demotes or removes the other owner, then A appends. Before the guard
writes (``usecases/team.py``), A's append passed and the account was left with no owner at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from reservekit.domain.errors import ConcurrentChange, Conflict
from reservekit.domain.events import Metadata
from reservekit.domain.members import MemberState
from reservekit.runtime import Runtime
from reservekit.usecases import team as team_handlers
from reservekit.usecases.commands import AddMember, ChangeMemberRole, Command, OpenAccount, RemoveMember

META = Metadata(source="cli")
PASSWORD = "a long enough password"
StepDown = Callable[[str, str], Command[object]]
STEPS_DOWN: dict[str, StepDown] = {
    "demote": lambda account, member: ChangeMemberRole(
        account_id=account, member_id=member, role="developer"
    ),
    "remove": lambda account, member: RemoveMember(account_id=account, member_id=member),
}


async def two_owners(runtime: Runtime) -> tuple[str, MemberState, MemberState]:
    opened = await runtime.application.execute(OpenAccount(name="Acme"), META)
    account = opened.account.account_id
    one, two = [
        await runtime.application.execute(
            AddMember(account_id=account, email=email, password=PASSWORD, role="owner"), META
        )
        for email in ("one@example.com", "two@example.com")
    ]
    return account, one, two


@pytest.mark.parametrize("a_does", sorted(STEPS_DOWN))
@pytest.mark.parametrize("b_does", sorted(STEPS_DOWN))
async def test_two_owners_stepping_down_at_once_on_two_replicas_leave_one_owner(
    replicas: tuple[Runtime, Runtime], monkeypatch: pytest.MonkeyPatch, a_does: str, b_does: str
) -> None:
    a, b = replicas
    account, one, two = await two_owners(a)
    read_team = team_handlers._team
    a_has_read, b_is_done = asyncio.Event(), asyncio.Event()

    async def team_then_wait(deps: object, account_id: str) -> list[MemberState]:
        members = await read_team(deps, account_id)  # type: ignore[arg-type]
        if deps is a.application.deps:
            a_has_read.set()
            await b_is_done.wait()
        return members

    monkeypatch.setattr(team_handlers, "_team", team_then_wait)
    on_a = asyncio.create_task(a.application.execute(STEPS_DOWN[a_does](account, one.member_id), META))
    await asyncio.wait_for(a_has_read.wait(), 10)
    await b.application.execute(STEPS_DOWN[b_does](account, two.member_id), META)
    b_is_done.set()
    with pytest.raises(ConcurrentChange):
        await on_a
    monkeypatch.undo()

    owners = [m.member_id for m in await read_team(a.application.deps, account) if m.role == "owner"]
    assert owners == [one.member_id]
    # A's retry now sees that one is the last owner and is refused for that reason.
    with pytest.raises(Conflict):
        await a.application.execute(STEPS_DOWN[a_does](account, one.member_id), META)


async def test_an_owner_steps_down_while_another_owner_remains(replicas: tuple[Runtime, Runtime]) -> None:
    """The guard only fails when an owner it counted moved: an unrelated change does not refuse."""
    a, b = replicas
    account, one, two = await two_owners(a)
    developer = await b.application.execute(
        AddMember(account_id=account, email="dev@example.com", password=PASSWORD, role="developer"), META
    )
    await b.application.execute(
        ChangeMemberRole(account_id=account, member_id=developer.member_id, role="auditor"), META
    )
    demoted = await a.application.execute(
        ChangeMemberRole(account_id=account, member_id=one.member_id, role="developer"), META
    )
    assert demoted.role == "developer"
    team = await team_handlers._team(a.application.deps, account)
    assert [m.member_id for m in team if m.role == "owner"] == [two.member_id]
