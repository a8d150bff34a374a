"""What the command handlers are given, wired once by the composition root (``runtime.py``).

Handlers receive exactly this and nothing else: no engine, no settings, no runtime. Unit tests build
one around ``InMemoryEventStore`` and a ``FakeClock``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from reservekit.clock import Clock
from reservekit.domain.errors import NotFound
from reservekit.domain.keys import KeyMaterial
from reservekit.ids import new_id
from reservekit.keys.tokens import KeyHasher, display_prefix, generate_secret, last4
from reservekit.usecases.ports import (
    AttemptGate,
    EventStore,
    FlagLookup,
    FlagOwner,
    KeyIdLookup,
    MemberDirectory,
    Passwords,
)

R = TypeVar("R")


async def _no_keys(_key_hash: str) -> str | None:
    return None


async def _always_allowed(_bucket: str) -> bool:
    return True


async def _no_flags(flag_id: str, _account_id: str | None) -> FlagOwner:
    raise NotFound(f"flag {flag_id} not found", field="flag_id")


@dataclass(frozen=True)
class HandlerDependencies:
    store: EventStore
    hasher: KeyHasher
    clock: Clock
    plans: Mapping[str, int] = field(default_factory=dict)
    key_id_for_hash: KeyIdLookup = _no_keys
    flag_for: FlagLookup = _no_flags
    # The dashboard's members (None where no entry point signs people in, e.g. unit tests of keys).
    members: MemberDirectory | None = None
    passwords: Passwords | None = None
    sign_in_gate: AttemptGate = _always_allowed

    def new_key_material(self) -> tuple[str, KeyMaterial]:
        """A fresh secret and what the domain may know of it (id, hash, prefix, last four)."""
        secret = generate_secret()
        material = KeyMaterial(
            new_id("key"), self.hasher.digest(secret), display_prefix(secret), last4(secret)
        )
        return secret, material


@dataclass(frozen=True)
class Handled(Generic[R]):
    """A handler's result and the last log position it wrote (0: it wrote nothing)."""

    result: R
    position: int = 0
