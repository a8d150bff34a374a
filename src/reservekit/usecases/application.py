"""The one door for every write: ``Application.execute(command, metadata)``.

Modelled on cosmicpython's message bus and bootstrap: each command type has exactly one handler, and the
handlers get their dependencies from the composition root instead of reaching for them. A handler reads
streams, decides with the pure domain, appends, and returns the last position it wrote; ``execute`` then
waits until the read models have applied that position (read-your-writes, after pyeventsourcing's
``wait`` on tracking records), so whatever the caller reads next already shows its own write. No
controller or command refreshes a projection by hand.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from reservekit.domain.accounts import AccountState
from reservekit.domain.events import Metadata
from reservekit.domain.keys import KeyState
from reservekit.domain.members import MemberState
from reservekit.usecases.accounts import handle_change_plan, handle_open_account, load_account
from reservekit.usecases.commands import (
    AcceptInvitation,
    AddMember,
    ChangeMemberRole,
    ChangePassword,
    ChangePlan,
    Command,
    CreateKey,
    InviteMember,
    OpenAccount,
    RemoveMember,
    ReportLeak,
    ResolveFlag,
    RevokeInvitation,
    RevokeKey,
    RotateKey,
    SignIn,
    SignOut,
    SignUp,
    UpdateKey,
)
from reservekit.usecases.dependencies import Handled, HandlerDependencies
from reservekit.usecases.flags import handle_resolve_flag
from reservekit.usecases.keys import (
    handle_create_key,
    handle_revoke_key,
    handle_rotate_key,
    handle_update_key,
    load_key,
)
from reservekit.usecases.leaks import handle_report_leak
from reservekit.usecases.members import (
    handle_add_member,
    handle_change_password,
    handle_sign_in,
    handle_sign_out,
    handle_sign_up,
    load_member,
)
from reservekit.usecases.ports import ReadModels
from reservekit.usecases.team import (
    handle_accept_invitation,
    handle_change_member_role,
    handle_invite_member,
    handle_remove_member,
    handle_revoke_invitation,
)

R = TypeVar("R")
Handler = Callable[[Any, HandlerDependencies, Metadata], Awaitable[Handled[Any]]]

HANDLERS: dict[type[Command[Any]], Handler] = {
    OpenAccount: handle_open_account,
    ChangePlan: handle_change_plan,
    CreateKey: handle_create_key,
    RevokeKey: handle_revoke_key,
    RotateKey: handle_rotate_key,
    ReportLeak: handle_report_leak,
    ResolveFlag: handle_resolve_flag,
    UpdateKey: handle_update_key,
    SignUp: handle_sign_up,
    AddMember: handle_add_member,
    SignIn: handle_sign_in,
    SignOut: handle_sign_out,
    ChangePassword: handle_change_password,
    InviteMember: handle_invite_member,
    AcceptInvitation: handle_accept_invitation,
    RevokeInvitation: handle_revoke_invitation,
    ChangeMemberRole: handle_change_member_role,
    RemoveMember: handle_remove_member,
}


class NoReadModels:
    """For callers that read nothing back (and unit tests): there is nothing to wait for."""

    async def wait_until(self, position: int) -> None:
        del position


class Application:
    """The application service: ``execute`` for every write, and the two reads folded from streams."""

    def __init__(self, deps: HandlerDependencies, read_models: ReadModels | None = None) -> None:
        self.deps = deps
        self._read_models = read_models or NoReadModels()

    async def execute(self, command: Command[R], metadata: Metadata) -> R:
        handler = HANDLERS[type(command)]
        handled = cast(Handled[R], await handler(command, self.deps, metadata))
        if handled.position:
            await self._read_models.wait_until(handled.position)
        return handled.result

    async def account(self, account_id: str) -> AccountState:
        """An account folded from its stream (never from a projection, so never behind)."""
        return await load_account(self.deps.store, account_id)

    async def key(self, key_id: str, *, account_id: str | None) -> KeyState:
        """A key folded from its stream; another account's key is reported like a missing one."""
        return await load_key(self.deps.store, account_id=account_id, key_id=key_id)

    async def member(self, member_id: str) -> MemberState:
        """A member folded from its stream."""
        return await load_member(self.deps, member_id)
