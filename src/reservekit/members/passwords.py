"""Argon2id password hashing (argon2-cffi: the reference implementation's binding, RFC 9106 defaults).

Hashing and verifying take tens of milliseconds of CPU, so both run in a worker thread and never stall
the event loop that serves API requests.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Argon2Passwords:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verified against when the email is unknown, so that path costs one Argon2 run like the other.
        # Made on first use: building a runtime (every CLI command, every test app) should not pay for it.
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        if self._dummy is None:
            self._dummy = self._hasher.hash("reservekit-no-such-member")
        try:
            matches = bool(self._hasher.verify(password_hash or self._dummy, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            matches = False
        return matches and password_hash is not None
