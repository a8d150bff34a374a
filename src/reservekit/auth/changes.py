"""The key change feed: key and plan changes from the lifecycle log, by position, for other services.

It reads the very log this app's own replicas tail (``events``, gapless and in commit order), so a
reader that resumes after position N misses nothing that commits later. A change names keys only by
id: never a hash, never a secret. A reader that is not an operator sees only its own account's
changes, but its resume position still moves past everyone else's (``next``).
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.db import read_transaction
from reservekit.domain.events import AccountOpened, AccountPlanChanged, KeyRotated, RecordedEvent
from reservekit.events.store import head_position_in, read_after_in

MAX_SCAN = 1000


class KeyChange(msgspec.Struct, kw_only=True):
    """One key or plan change. ``key_id`` is null for plan changes; ``plan`` is set only for those.
    ``new_key_id``/``grace_ends_at``: a rotation's replacement and the instant the old key expires."""

    position: int
    type: str
    account_id: str
    key_id: str | None
    recorded_at: datetime
    plan: str | None = None
    new_key_id: str | None = None
    grace_ends_at: datetime | None = None


class ChangesPage(msgspec.Struct, kw_only=True):
    """``next``: the position to resume from (``after=next``), past changes this reader cannot see."""

    changes: list[KeyChange]
    next: int


def key_change(recorded: RecordedEvent, *, account_id: str | None) -> KeyChange | None:
    """The change ``recorded`` means to a reader restricted to ``account_id`` (None: every account)."""
    event = recorded.data
    owner: str | None = getattr(event, "account_id", None)
    key_id: str | None = getattr(event, "key_id", None)
    is_plan = isinstance(event, AccountOpened | AccountPlanChanged)
    if owner is None or (key_id is None and not is_plan):
        return None  # not a key or plan change (a flag resolution, say)
    if account_id is not None and owner != account_id:
        return None
    rotated = event if isinstance(event, KeyRotated) else None
    return KeyChange(
        position=recorded.position,
        type=recorded.type,
        account_id=owner,
        key_id=key_id,
        recorded_at=recorded.recorded_at,
        plan=event.plan if isinstance(event, AccountOpened | AccountPlanChanged) else None,
        new_key_id=rotated.new_key_id if rotated else None,
        grace_ends_at=rotated.grace_ends_at if rotated else None,
    )


async def head_position(engine: AsyncEngine) -> int:
    async with read_transaction(engine) as conn:
        return await head_position_in(conn)


async def read_changes(
    engine: AsyncEngine, *, after: int, account_id: str | None, limit: int = MAX_SCAN
) -> tuple[ChangesPage, bool]:
    """The visible changes among the next ``limit`` log positions after ``after``; the flag says the
    scan stopped at ``limit`` (more may follow at once) rather than at the head."""
    async with read_transaction(engine) as conn:
        batch = await read_after_in(conn, after, limit=limit)
    changes = [c for c in (key_change(r, account_id=account_id) for r in batch) if c is not None]
    return ChangesPage(changes=changes, next=batch[-1].position if batch else after), len(batch) == limit
