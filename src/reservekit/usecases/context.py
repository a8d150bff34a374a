"""What every use case needs, wired once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from reservekit.clock import Clock
from reservekit.domain.keys import KeyMaterial, KeyState
from reservekit.events.store import EventStore
from reservekit.ids import new_id
from reservekit.keys.tokens import KeyHasher, display_prefix, generate_secret, last4


@dataclass(frozen=True)
class Authority:
    store: EventStore
    hasher: KeyHasher
    clock: Clock
    plans: dict[str, int] = field(default_factory=dict)

    def new_key_material(self) -> tuple[str, KeyMaterial]:
        secret = generate_secret()
        material = KeyMaterial(
            new_id("key"), self.hasher.digest(secret), display_prefix(secret), last4(secret)
        )
        return secret, material


class IssuedKey(msgspec.Struct, frozen=True):
    """A key together with its plaintext: exists only on the way out of a create or rotate."""

    key: KeyState
    secret: str
