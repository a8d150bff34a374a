"""Plain values the domain decision tests build on: a clock reading, plans, key material, recorded
events, an account, a key state, and a way to catch a refusal. No database, no clock, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from reservekit.domain.accounts import AccountState
from reservekit.domain.errors import DomainError
from reservekit.domain.events import Event, Metadata, RecordedEvent
from reservekit.domain.keys import KeyMaterial, KeyState

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PLANS = {"free": 60, "pro": 600}
MATERIAL = KeyMaterial("key_new", "h" * 64, "sk_rsv_AbCd", "WxYz")


def recorded(event: Event, version: int, position: int | None = None, at: datetime = NOW) -> RecordedEvent:
    """``event`` as the store would hand it back; the position defaults to ten times the version so
    that a fold mixing the two up shows."""
    return RecordedEvent(
        position=position if position is not None else version * 10,
        stream_id="s",
        stream_version=version,
        type="t",
        data=event,
        metadata=Metadata(),
        recorded_at=at,
        prev_hash="0" * 64,
        hash="1" * 64,
    )


def account(*, operator: bool = False, plan: str = "free") -> AccountState:
    return AccountState(account_id="acct_a", name="A", plan=plan, operator=operator, opened_at=NOW, version=1)


_KEY = KeyState(
    key_id="key_a",
    account_id="acct_a",
    key_hash="k" * 64,
    prefix="sk_rsv_AAAA",
    last4="ZZZZ",
    name="old",
    domains=("a.example.com",),
    scopes=("keys:read",),
    created_at=NOW,
    expires_at=None,
)


def key(**changes: object) -> KeyState:
    """A live key created at NOW, with ``changes`` applied."""
    return msgspec.structs.replace(_KEY, **changes)


def refused(error: type[DomainError], call: object, *args: object, **kwargs: object) -> DomainError:
    with pytest.raises(error) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value
