"""The Team page: members and their roles, invitations by link, role changes, removals; and the page an
invitee opens (``/dashboard/join``) to set a password and join.

Owners manage the team (``team:manage``); every member sees it. Each action is a command through the
application service, like the key pages; the invitation link is shown once, to the owner who made it
(only its token's hash is kept), and mailed too when SMTP is configured (``members/mail.py``).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from reservekit.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from reservekit.domain.members import MIN_PASSWORD_CHARS, MemberState, fold_member
from reservekit.domain.roles import ROLE_SUMMARIES, ROLES, TEAM_MANAGE, TEAM_VIEW
from reservekit.domain.team import InvitationState, InvitationUnusable, fold_invitation
from reservekit.members.mail import InvitationMailer, SmtpConfig
from reservekit.settings import Settings
from reservekit.usecases.commands import (
    AcceptInvitation,
    ChangeMemberRole,
    InviteMember,
    RemoveMember,
    RevokeInvitation,
)
from reservekit.web.dashboard.auth_pages import signed_in_response
from reservekit.web.dashboard.pages import form_of, render, see_other, text, when
from reservekit.web.dashboard.visit import Viewer, Visit

TEAM_PAGE_LIMIT = 200


def invitation_mailer(settings: Settings) -> InvitationMailer:
    if not settings.smtp_host:
        return InvitationMailer()
    return InvitationMailer(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
        )
    )


async def _members(visit: Visit, account_id: str) -> list[MemberState]:
    """Named by the directory (always current), each folded from its own stream for its role."""
    team = []
    for member_id in (await visit.services.directory.members_of(account_id))[:TEAM_PAGE_LIMIT]:
        member = fold_member(await visit.application.deps.store.read_stream(member_id))
        if member is not None and not member.removed and member.account_id == account_id:
            team.append(member)
    return team


async def _invitations(visit: Visit, account_id: str) -> list[InvitationState]:
    found = []
    for invitation_id in (await visit.services.directory.invitations_of(account_id))[:TEAM_PAGE_LIMIT]:
        state = fold_invitation(await visit.application.deps.store.read_stream(invitation_id))
        if state is not None and state.status == "pending":
            found.append(state)
    return found


def join_link(request: Request[Any, Any, Any], token: str) -> str:
    # The address the owner is using: the link then opens the same dashboard they are looking at.
    return f"{str(request.base_url).rstrip('/')}/dashboard/join?token={token}"


class TeamPages(Controller):
    path = "/team"

    async def _page(
        self,
        visit: Visit,
        viewer: Viewer,
        *,
        status: int = 200,
        errors: dict[str, str] | None = None,
        draft: dict[str, str] | None = None,
        notice: str | None = None,
    ) -> Template:
        now = visit.clock.now()
        return render(
            "team.html",
            status=status,
            title="Team",
            viewer=viewer,
            members=await _members(visit, viewer.account_id),
            invitations=await _invitations(visit, viewer.account_id),
            roles=ROLES,
            summaries=ROLE_SUMMARIES,
            errors=errors or {},
            draft=draft or {"email": "", "role": "developer"},
            form_id=visit.new_form_id(),
            notice=notice,
            now=now,
            when=when,
            nav="team",
        )

    @get("/")
    async def index(self, visit: NamedDependency[Visit], done: FromQuery[str | None] = None) -> Template:
        viewer, _ = await visit.require(TEAM_VIEW)
        notices = {
            "role": "Role changed.",
            "removed": "Member removed. Their sessions have ended.",
            "withdrawn": "Invitation withdrawn.",
        }
        return await self._page(visit, viewer, notice=notices.get(done or ""))

    @post("/invitations")
    async def invite(
        self, visit: NamedDependency[Visit], request: Request[Any, Any, Any]
    ) -> Template | Redirect:
        viewer, session = await visit.require(TEAM_MANAGE)
        form = await form_of(request)
        draft = {"email": text(form, "email"), "role": text(form, "role")}
        command = InviteMember(account_id=viewer.account_id, email=draft["email"], role=draft["role"])
        if not await visit.spend_form(text(form, "form_id")):
            return render("already_shown.html", status=409, title="Already submitted", nav="team")
        try:
            issued = await visit.application.execute(command, visit.metadata(session))
        except DomainError as exc:
            return await self._page(
                visit, viewer, status=422, errors={exc.field or "form": exc.message}, draft=draft
            )
        link = join_link(request, issued.token)
        mailed = await visit.services.mailer.send_invitation(
            to=issued.invitation.email,
            link=link,
            role=issued.invitation.role,
            inviter=viewer.email,
            expires=when(issued.invitation.expires_at),
        )
        return render(
            "team_invited.html",
            status=201,
            title="Invitation link",
            invitation=issued.invitation,
            link=link,
            mailed=mailed,
            when=when,
            nav="team",
        )

    @post("/invitations/{invitation_id:str}/withdraw")
    async def withdraw(self, invitation_id: FromPath[str], visit: NamedDependency[Visit]) -> Redirect:
        viewer, session = await visit.require(TEAM_MANAGE)
        command = RevokeInvitation(account_id=viewer.account_id, invitation_id=invitation_id)
        await visit.application.execute(command, visit.metadata(session))
        return see_other("/dashboard/team/?done=withdrawn")

    @post("/members/{member_id:str}/role")
    async def change_role(
        self, member_id: FromPath[str], visit: NamedDependency[Visit], request: Request[Any, Any, Any]
    ) -> Template | Redirect:
        viewer, session = await visit.require(TEAM_MANAGE)
        role = text(await form_of(request), "role")
        command = ChangeMemberRole(account_id=viewer.account_id, member_id=member_id, role=role)
        try:
            await visit.application.execute(command, visit.metadata(session))
        except (InvalidInput, Conflict) as exc:  # a role that does not exist; the last owner
            status = 422 if isinstance(exc, InvalidInput) else 409
            return await self._page(visit, viewer, status=status, errors={"team": exc.message})
        return see_other("/dashboard/team/?done=role")

    @get("/members/{member_id:str}/remove")
    async def confirm_remove(self, member_id: FromPath[str], visit: NamedDependency[Visit]) -> Template:
        viewer, _ = await visit.require(TEAM_MANAGE)
        member = next((m for m in await _members(visit, viewer.account_id) if m.member_id == member_id), None)
        if member is None:
            raise NotFound(f"member {member_id} not found")
        return render("team_remove.html", title="Remove member", member=member, viewer=viewer, nav="team")

    @post("/members/{member_id:str}/remove")
    async def remove(self, member_id: FromPath[str], visit: NamedDependency[Visit]) -> Template | Redirect:
        viewer, session = await visit.require(TEAM_MANAGE)
        command = RemoveMember(account_id=viewer.account_id, member_id=member_id)
        try:
            await visit.application.execute(command, visit.metadata(session))
        except Conflict as exc:  # the last owner
            return await self._page(visit, viewer, status=409, errors={"team": exc.message})
        if member_id == viewer.member_id:
            return see_other("/dashboard/signin")
        return see_other("/dashboard/team/?done=removed")


class JoinPages(Controller):
    """The invitee's side: no session needed, the link's token is the credential (once)."""

    path = "/join"

    async def _invitation(self, visit: Visit, token: str) -> InvitationState:
        invitation_id = await visit.services.directory.invitation_for(token)
        state = None
        if invitation_id is not None:
            state = fold_invitation(await visit.application.deps.store.read_stream(invitation_id))
        if state is None or state.status_at(visit.clock.now()) != "pending":
            raise InvitationUnusable()
        return state

    def _form(
        self, invitation: InvitationState, token: str, *, status: int = 200, error: str | None = None
    ) -> Template:
        return render(
            "team_join.html",
            status=status,
            title="Join the team",
            invitation=invitation,
            token=token,
            error=error,
            min=MIN_PASSWORD_CHARS,
            summaries=ROLE_SUMMARIES,
        )

    @get("/")
    async def show(self, visit: NamedDependency[Visit], token: FromQuery[str] = "") -> Template:
        try:
            invitation = await self._invitation(visit, token)
        except InvitationUnusable as exc:
            return render("error.html", status=410, title="Invitation not valid", message=exc.message)
        return self._form(invitation, token)

    @post("/")
    async def accept(
        self, visit: NamedDependency[Visit], request: Request[Any, Any, Any]
    ) -> Template | Redirect:
        form = await form_of(request)
        token = text(form, "token")
        password = str(form.get("password") or "")
        try:
            invitation = await self._invitation(visit, token)
        except InvitationUnusable as exc:
            return render("error.html", status=410, title="Invitation not valid", message=exc.message)
        try:
            joined = await visit.application.execute(
                AcceptInvitation(token=token, password=password), visit.metadata(None)
            )
        except InvitationUnusable as exc:
            return render("error.html", status=410, title="Invitation not valid", message=exc.message)
        except DomainError as exc:
            return self._form(invitation, token, status=422, error=exc.message)
        return signed_in_response(visit, joined.session_token)
