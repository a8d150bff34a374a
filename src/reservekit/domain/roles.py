"""Who may do what in the dashboard: a member's role, and what an operator account adds.

Roles belong to a member of one account (``member_added.role``, ``member_role_changed``):

- ``owner``: everything in the account, and the only role that manages the team and webhook endpoints;
- ``developer``: the API keys (generate, edit, rotate, revoke) and usage; reads the team and webhooks;
- ``auditor``: read-only keys and usage, the security view (flags, audit trail), and resolving flags;
  never changes a key, a member or an endpoint.

A member of an operator account (``account_opened.operator``: the dashboard's ``platform:admin``) also
sees every account; only its owners change plans. The table is data so the docs, the pages and the
table-driven tests read the same thing.
"""

from __future__ import annotations

from typing import Final

from reservekit.domain.errors import InvalidInput, NotPermitted

OWNER: Final = "owner"
DEVELOPER: Final = "developer"
AUDITOR: Final = "auditor"
ROLES: Final = (OWNER, DEVELOPER, AUDITOR)

KEYS_VIEW: Final = "keys:view"
KEYS_MANAGE: Final = "keys:manage"
USAGE_VIEW: Final = "usage:view"
SECURITY_VIEW: Final = "security:view"
SECURITY_RESOLVE: Final = "security:resolve"
TEAM_VIEW: Final = "team:view"
TEAM_MANAGE: Final = "team:manage"
WEBHOOKS_VIEW: Final = "webhooks:view"
WEBHOOKS_MANAGE: Final = "webhooks:manage"
ACCOUNTS_VIEW: Final = "accounts:view"
ACCOUNTS_MANAGE: Final = "accounts:manage"

_EVERY_MEMBER = frozenset({KEYS_VIEW, USAGE_VIEW, TEAM_VIEW, WEBHOOKS_VIEW})
ROLE_PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    OWNER: _EVERY_MEMBER | {KEYS_MANAGE, SECURITY_VIEW, SECURITY_RESOLVE, TEAM_MANAGE, WEBHOOKS_MANAGE},
    DEVELOPER: _EVERY_MEMBER | {KEYS_MANAGE},
    AUDITOR: _EVERY_MEMBER | {SECURITY_VIEW, SECURITY_RESOLVE},
}
# What membership of an operator account adds, by role.
OPERATOR_PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    OWNER: frozenset({ACCOUNTS_VIEW, ACCOUNTS_MANAGE}),
    DEVELOPER: frozenset({ACCOUNTS_VIEW}),
    AUDITOR: frozenset({ACCOUNTS_VIEW}),
}
ROLE_SUMMARIES: Final[dict[str, str]] = {
    OWNER: "everything, including the team and webhooks",
    DEVELOPER: "API keys and usage",
    AUDITOR: "read-only keys and usage, the security view",
}


def check_role(role: str | None, *, field: str = "role") -> str:
    if role not in ROLES:
        raise InvalidInput(f"{field} must be one of {', '.join(ROLES)}", field=field)
    return role


def permissions(role: str, *, operator: bool) -> frozenset[str]:
    granted = ROLE_PERMISSIONS.get(role, frozenset())
    return granted | OPERATOR_PERMISSIONS.get(role, frozenset()) if operator else granted


def can(role: str, permission: str, *, operator: bool = False) -> bool:
    return permission in permissions(role, operator=operator)


class RoleRefused(NotPermitted):
    """A member's role does not allow the page or action (the dashboard answers 403)."""

    def __init__(self, role: str, permission: str) -> None:
        super().__init__(
            f"Your role ({role}) does not allow this ({permission}). Ask an owner of the account."
        )
        self.role = role
        self.permission = permission
