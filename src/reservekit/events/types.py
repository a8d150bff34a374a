"""Moved to ``reservekit.domain.events`` (the events are the domain's); kept for ``auth/key_view.py``."""

from reservekit.domain.events import (
    AccountOpened,
    AccountPlanChanged,
    KeyCreated,
    KeyRevoked,
    KeyRotated,
    LeakReported,
    RecordedEvent,
)

__all__ = [
    "AccountOpened",
    "AccountPlanChanged",
    "KeyCreated",
    "KeyRevoked",
    "KeyRotated",
    "LeakReported",
    "RecordedEvent",
]
