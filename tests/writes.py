"""Writes for tests that drive a ``Runtime`` directly, in the shape of the old use-case functions.

Each goes through ``runtime.application.execute``, the one door the API and the CLI use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from reservekit.domain.accounts import AccountState
from reservekit.domain.events import Metadata
from reservekit.domain.keys import KeyState
from reservekit.runtime import Runtime
from reservekit.usecases.commands import CreateKey, IssuedKey, OpenAccount, RevokeKey, RotateKey


async def open_account(
    runtime: Runtime, *, name: str, plan: str = "free", operator: bool = False, metadata: Metadata
) -> tuple[AccountState, IssuedKey]:
    opened = await runtime.application.execute(OpenAccount(name=name, plan=plan, operator=operator), metadata)
    return opened.account, opened.first_key


async def create_key(
    runtime: Runtime,
    *,
    account_id: str,
    name: str | None = None,
    scopes: Sequence[str] | None = None,
    expires_at: datetime | None = None,
    metadata: Metadata,
) -> IssuedKey:
    command = CreateKey(account_id=account_id, name=name, scopes=scopes, expires_at=expires_at)
    return await runtime.application.execute(command, metadata)


async def revoke_key(
    runtime: Runtime, *, account_id: str | None, key_id: str, reason: str | None, metadata: Metadata
) -> KeyState:
    return await runtime.application.execute(
        RevokeKey(account_id=account_id, key_id=key_id, reason=reason), metadata
    )


async def rotate_key(
    runtime: Runtime, *, account_id: str | None, key_id: str, grace_period_seconds: int, metadata: Metadata
) -> tuple[KeyState, IssuedKey]:
    command = RotateKey(account_id=account_id, key_id=key_id, grace_period_seconds=grace_period_seconds)
    rotated = await runtime.application.execute(command, metadata)
    return rotated.old, rotated.new
