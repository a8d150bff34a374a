"""The pure half of SPEC §4: what a presented key's facts say about one request, in table order.

Shared by the authority's own middleware, ``POST /v1/keys/verify`` and the client package's ASGI
middleware (``reservekit_client.middleware``), so all three answer a key with exactly the same rules:
revoked, then expired, then the domain rule, then scopes. Rows 1-3 (no key, malformed, unknown) and
row 8 (quota) need I/O and live in ``Authenticator``; rows 1-2 start from ``bearer_token``.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Protocol

from reservekit.auth.outcomes import Outcome
from reservekit.domain.domains import host_matches


class KeyFacts(Protocol):
    """What a check needs to know of a key: ``CachedKey`` on the authority, a cached answer elsewhere."""

    @property
    def revoked(self) -> bool: ...

    @property
    def expires_at(self) -> float | None: ...

    @property
    def domains(self) -> Sequence[str]: ...

    @property
    def scopes(self) -> AbstractSet[str]: ...


def bearer_token(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (scheme case-insensitive).

    None when there is no header (row 1); ``""`` when the header is not a bearer credential, which
    then fails the format check like a malformed token (row 2).
    """
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()


def judge_key(
    key: KeyFacts, *, now: float, origin_host: str | None, required_scopes: AbstractSet[str] | None
) -> Outcome:
    """Rows 4-7 for a known key. ``required_scopes``: any one of them grants access, as for an endpoint."""
    if key.revoked:
        return "revoked"
    expires_at = key.expires_at
    if expires_at is not None and now >= expires_at:
        return "expired"
    if key.domains and not host_matches(origin_host, key.domains):
        return "origin_mismatch"
    if required_scopes and required_scopes.isdisjoint(key.scopes):
        return "scope_denied"
    return "ok"
