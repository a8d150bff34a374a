"""The one dependency every dashboard page takes: ``visit: NamedDependency[Visit]``.

Like ``ApiCall`` for the API: the application service (every write), an engine for read-only queries,
the clock, and who is visiting — a member resolved from the session cookie, or nobody. Events written
from here carry the member as actor and ``source: "dashboard"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import NotAuthorizedException
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.clock import Clock, to_micros
from reservekit.domain.events import Metadata
from reservekit.domain.roles import RoleRefused, can
from reservekit.members.directory import ActiveSession, SqlMemberDirectory, new_form_id
from reservekit.members.mail import InvitationMailer
from reservekit.usecases.application import Application
from reservekit.web.deps import MAX_USER_AGENT_CHARS


@dataclass(frozen=True)
class DashboardServices:
    """Built once by ``create_app``."""

    application: Application
    engine: AsyncEngine
    clock: Clock
    directory: SqlMemberDirectory
    signup_open: bool
    secure_cookies: bool
    mailer: InvitationMailer = field(default_factory=InvitationMailer)

    @property
    def session_cookie(self) -> str:
        # The __Host- prefix makes the browser refuse the cookie unless it is Secure, host-only and Path=/.
        return "__Host-rk_session" if self.secure_cookies else "rk_session"


class SignInRequired(NotAuthorizedException):
    """No live session: the page handler's exception handler redirects to the sign-in page."""


class Viewer(msgspec.Struct, frozen=True, kw_only=True):
    """The signed-in member as the log has them now: role and whether their account is an operator."""

    member_id: str
    account_id: str
    email: str
    role: str
    operator: bool

    def can(self, permission: str) -> bool:
        return can(self.role, permission, operator=self.operator)


class Visit:
    __slots__ = ("_request", "_session", "_viewer", "services")

    def __init__(self, services: DashboardServices, request: Request[Any, Any, Any]) -> None:
        self.services = services
        self._request = request
        self._session: ActiveSession | None = None
        self._viewer: Viewer | None = None

    @property
    def application(self) -> Application:
        return self.services.application

    @property
    def engine(self) -> AsyncEngine:
        return self.services.engine

    @property
    def clock(self) -> Clock:
        return self.services.clock

    @property
    def session_token(self) -> str:
        return self._request.cookies.get(self.services.session_cookie, "")

    async def member(self) -> ActiveSession | None:
        if self._session is None and self.session_token:
            self._session = await self.services.directory.session(self.session_token)
        return self._session

    async def require_member(self) -> ActiveSession:
        session = await self.member()
        if session is None:
            raise SignInRequired()
        return session

    async def viewer(self) -> Viewer:
        """The member with their role, folded from the log on every request: a role change or a removal
        holds for the very next page, on every replica. A removed member is signed out."""
        if self._viewer is not None:
            return self._viewer
        session = await self.require_member()
        member = await self.application.member(session.member_id)
        if member.removed or member.account_id != session.account_id:
            await self.services.directory.remove_member(member.member_id)
            raise SignInRequired()
        account = await self.application.account(member.account_id)
        self._viewer = Viewer(
            member_id=member.member_id,
            account_id=member.account_id,
            email=member.email,
            role=member.role,
            operator=account.operator,
        )
        # base.html reads it to show only the pages this member may open.
        self._request.state.dashboard_viewer = self._viewer
        return self._viewer

    async def require(self, permission: str) -> tuple[Viewer, ActiveSession]:
        """Every page and action asks for its permission (``domain/roles.py``); a refusal is a 403 page."""
        viewer = await self.viewer()
        if not viewer.can(permission):
            raise RoleRefused(viewer.role, permission)
        session = await self.require_member()
        return viewer, session

    def new_form_id(self) -> str:
        """A one-shot id for forms that show a secret: a resubmission (reload, Back) cannot mint another."""
        return new_form_id(to_micros(self.clock.now()))

    async def spend_form(self, form_id: str) -> bool:
        """True the first time a one-shot form is submitted. A POST without an id spends a fresh one: it
        can replay nothing, and it goes through the same check as a real form."""
        return await self.services.directory.spend_form(form_id or self.new_form_id())

    def metadata(self, session: ActiveSession | None) -> Metadata:
        state = self._request.scope.get("state", {})
        return Metadata(
            actor_account_id=session.account_id if session else None,
            actor_member_id=session.member_id if session else None,
            request_id=state.get("request_id"),
            client_ip=state.get("client_ip"),
            user_agent=(state.get("user_agent") or "")[:MAX_USER_AGENT_CHARS] or None,
            source="dashboard",
        )


def provide_visit(request: Request[Any, Any, Any]) -> Visit:
    return Visit(request.app.state.dashboard, request)
