"""The usage and security pages' visitor: the permission each page asks for, and whose records it reads.

Who may do what is ``domain/roles.py`` (one table for every page); here a page's permission is checked
through ``Visit.require`` and the visitor gains what these pages need: the plan (its limit is drawn on the
rate chart) and the scope of the security pages (an operator's is every account).
"""

from __future__ import annotations

from dataclasses import dataclass

from reservekit.domain.roles import SECURITY_RESOLVE, SECURITY_VIEW, USAGE_VIEW
from reservekit.members.directory import ActiveSession
from reservekit.web.dashboard.visit import Visit


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


async def _viewer(visit: Visit, permission: str) -> Viewer:
    seen, session = await visit.require(permission)
    account = await visit.application.account(session.account_id)
    return Viewer(session, seen.role, seen.operator, account.plan)


async def usage_viewer(visit: Visit) -> Viewer:
    return await _viewer(visit, USAGE_VIEW)


async def security_viewer(visit: Visit) -> Viewer:
    """The flags, the audit trail, verification, keys as of an instant, export."""
    return await _viewer(visit, SECURITY_VIEW)


async def resolver_viewer(visit: Visit) -> Viewer:
    return await _viewer(visit, SECURITY_RESOLVE)
