"""What the use cases need from the outside world, as protocols the adapters implement.

The handlers depend on these and on nothing concrete: the event store is the SQL ``EventStore`` in
production and ``InMemoryEventStore`` in unit tests; both pass one contract suite
(``tests/contract/test_event_store_contract.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import msgspec

from reservekit.domain.events import Event, Metadata, RecordedEvent

AppendListener = Callable[[Sequence[RecordedEvent]], None]


class ConcurrencyConflict(Exception):
    """The stream moved on since it was read; nothing was written."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id} is at version {actual}, expected {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class StreamWrite(msgspec.Struct, frozen=True):
    """Events for one stream, to be appended only if the stream is still at ``expected_version``.

    With no events it is a guard: nothing is written to that stream, but the whole append fails if the
    stream moved, for a decision that read it (``usecases/team.py``'s last-owner rule)."""

    stream_id: str
    expected_version: int
    events: Sequence[Event]


class EventStore(Protocol):
    """The append-only, hash-chained lifecycle log.

    - ``append`` writes to one or more streams atomically, or raises ``ConcurrencyConflict`` and writes
      nothing when a stream is not at the version the caller read;
    - positions are global, gapless and in commit order, starting at 1;
    - listeners registered with ``on_append`` see each committed append on this replica.
    """

    async def append(self, writes: Sequence[StreamWrite], metadata: Metadata) -> list[RecordedEvent]: ...

    async def read_stream(self, stream_id: str) -> list[RecordedEvent]: ...

    async def read_after(
        self, position: int, *, limit: int = 1000, until: int | None = None
    ) -> list[RecordedEvent]: ...

    async def head(self) -> int: ...

    def on_append(self, listener: AppendListener) -> None: ...


class ReadModels(Protocol):
    """Read-your-writes: the views a caller reads after a write have applied everything up to it."""

    async def wait_until(self, position: int) -> None: ...


KeyIdLookup = Callable[[str], Awaitable[str | None]]
"""Key id for a key hash (None if no such key): the replica's key view in production."""


class FlagOwner(msgspec.Struct, frozen=True):
    flag_id: str
    account_id: str | None


FlagLookup = Callable[[str, str | None], Awaitable[FlagOwner]]
"""The flag with this id as seen by this account (None: every account); raises ``FlagNotFound``."""


class Credential(msgspec.Struct, frozen=True):
    member_id: str
    account_id: str
    password_hash: str


class MemberDirectory(Protocol):
    """Where members' password hashes and sessions live: plain rows beside the log, never in it.

    Filled by ``reservekit.members`` (SQL tables ``member_credentials`` and ``dashboard_sessions``).
    """

    async def claim_email(self, email: str, credential: Credential) -> bool:
        """Store the credential unless the email is taken (False); atomic across replicas."""
        ...

    async def release_email(self, email: str) -> None: ...

    async def credential(self, email: str) -> Credential | None: ...

    async def set_password_hash(self, member_id: str, password_hash: str) -> None: ...

    async def open_session(self, member_id: str, account_id: str) -> str:
        """A new session; returns its opaque token (only its hash is stored)."""
        ...

    async def close_session(self, token: str) -> None: ...

    async def close_all_sessions(self, member_id: str) -> None: ...

    async def save_invitation(
        self, token: str, invitation_id: str, account_id: str, expires_at_us: int
    ) -> None:
        """Keep an invitation link's token (only its hash) until it is used or withdrawn."""
        ...

    async def invitation_for(self, token: str) -> str | None:
        """The invitation id this link's token opens, or None."""
        ...

    async def forget_invitation(self, invitation_id: str) -> None: ...

    async def remove_member(self, member_id: str) -> None:
        """Delete the member's credential and end every session of theirs, at once."""
        ...

    async def members_of(self, account_id: str) -> list[str]:
        """The ids of the account's members (those with a credential), oldest first."""
        ...

    async def invitations_of(self, account_id: str) -> list[str]:
        """The ids of the account's invitations whose link is still kept (not used, not withdrawn)."""
        ...


class Passwords(Protocol):
    """Argon2id in production (``reservekit.members.passwords``)."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """``None`` (unknown email) costs the same as a wrong password, and is always False."""
        ...


AttemptGate = Callable[[str], Awaitable[bool]]
"""Consume one sign-in attempt from a bucket (``ip:…`` or ``email:…``); False when over the limit."""
