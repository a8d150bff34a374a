"""Why a decision was refused, in the domain's words.

Nothing here knows about HTTP: ``web/problems.py`` holds the one table that turns each of these into a
status and a problem+json body, and the CLI prints ``message``.
"""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """A value the rules do not accept: a bad domain, an unknown scope or plan, a blank name."""


class NotFound(DomainError):
    """No such account, key, flag or service, or one that belongs to another account."""


class Conflict(DomainError):
    """The thing is not in a state that allows this (revoked, expired, already rotated)."""


class ConcurrentChange(Conflict):
    """Another writer changed the same stream between our read and our append; nothing was written."""


class NotPermitted(DomainError):
    """The caller asked to grant something it does not hold itself."""
