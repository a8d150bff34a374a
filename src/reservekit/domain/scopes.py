"""Scopes a key can hold. ``platform:admin`` exists only on operator accounts' keys."""

from __future__ import annotations

from collections.abc import Iterable

from reservekit.domain.errors import InvalidInput, NotPermitted

PLATFORM_ADMIN = "platform:admin"
ACCOUNT_SCOPES: tuple[str, ...] = (
    "services:read",
    "services:write",
    "keys:read",
    "keys:write",
    "usage:read",
    "audit:read",
    "webhooks:read",
    "webhooks:write",
)
# Not a default: a service key that asks the authority about other keys is issued explicitly.
KEYS_VERIFY = "keys:verify"
ALL_SCOPES: frozenset[str] = frozenset((*ACCOUNT_SCOPES, KEYS_VERIFY, PLATFORM_ADMIN))


def resolve_scopes(requested: Iterable[str] | None, *, operator: bool) -> tuple[str, ...]:
    """Default: every scope of the account except platform:admin. Returned sorted and de-duplicated."""
    if requested is None:
        return tuple(sorted(ACCOUNT_SCOPES))
    scopes = set(requested)
    unknown = sorted(scopes - ALL_SCOPES)
    if unknown:
        raise InvalidInput(
            f"unknown scope {unknown[0]!r}; allowed: {', '.join(sorted(ALL_SCOPES))}", field="scopes"
        )
    if PLATFORM_ADMIN in scopes and not operator:
        raise InvalidInput("platform:admin is only available to operator accounts", field="scopes")
    if not scopes:
        raise InvalidInput("a key needs at least one scope", field="scopes")
    return tuple(sorted(scopes))


def operator_scopes() -> tuple[str, ...]:
    return tuple(sorted(ALL_SCOPES))


def check_grantable(scopes: Iterable[str], grantable: frozenset[str] | None) -> None:
    """Through the API a key can only grant scopes it holds itself: no escalation by key creation."""
    if grantable is None:
        return
    if "keys:write" in grantable:
        # keys:verify only answers for keys whose secret the asker holds, within the same account.
        grantable = grantable | {KEYS_VERIFY}
    beyond = sorted(set(scopes) - grantable)
    if beyond:
        raise NotPermitted(
            f"the calling key cannot grant scope {beyond[0]!r}, which it does not hold", field="scopes"
        )
