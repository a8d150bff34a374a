"""Who may open the usage and security pages: one small rule per page, and the visitor it is asked about.

Roles (``MemberAdded.role``): ``owner`` (everything), ``developer`` (keys and usage), ``auditor``
(read-only usage and security). Members of an operator account (``platform:admin``) see every page, and
on the security pages every account. A refusal is a 403 page naming the role, and nothing is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.exceptions import PermissionDeniedException

from reservekit.members.directory import ActiveSession
from reservekit.web.dashboard.pages import render
from reservekit.web.dashboard.visit import Visit

USAGE_ROLES = frozenset({"owner", "developer", "auditor"})
SECURITY_ROLES = frozenset({"owner", "auditor"})


def can_view_usage(member_role: str, is_operator: bool) -> bool:
    return is_operator or member_role in USAGE_ROLES


def can_view_security(member_role: str, is_operator: bool) -> bool:
    """The flags, the audit trail, verification, keys as of an instant, export; and resolving a flag."""
    return is_operator or member_role in SECURITY_ROLES


@dataclass(frozen=True)
class Viewer:
    session: ActiveSession
    role: str
    operator: bool
    plan: str

    @property
    def account_id(self) -> str:
        return self.session.account_id

    @property
    def scope(self) -> str | None:
        """Whose records the security pages read: an operator's None means every account."""
        return None if self.operator else self.session.account_id


class RoleRefused(PermissionDeniedException):
    def __init__(self, role: str, page: str) -> None:
        super().__init__(detail=f"Your role ({role}) cannot open the {page}. Ask an owner of the account.")


def role_refused(request: Request[Any, Any, Any], exc: RoleRefused) -> Response[Any]:
    del request
    return render("error.html", status=403, title="Not for your role", message=exc.detail)


async def viewer(visit: Visit) -> Viewer:
    session = await visit.require_member()
    member = await visit.application.member(session.member_id)
    account = await visit.application.account(session.account_id)
    return Viewer(session, member.role, account.operator, account.plan)


async def usage_viewer(visit: Visit) -> Viewer:
    seen = await viewer(visit)
    if not can_view_usage(seen.role, seen.operator):
        raise RoleRefused(seen.role, "usage pages")
    return seen


async def security_viewer(visit: Visit) -> Viewer:
    seen = await viewer(visit)
    if not can_view_security(seen.role, seen.operator):
        raise RoleRefused(seen.role, "security view")
    return seen
