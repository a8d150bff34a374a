"""Opening accounts (with their first key) and changing plans."""

from __future__ import annotations

from reservekit.domain.accounts import AccountState, decide_change_plan, decide_open_account, fold_account
from reservekit.domain.errors import Conflict, NotFound
from reservekit.domain.keys import decide_create_key, fold_key
from reservekit.domain.scopes import operator_scopes
from reservekit.events.store import ConcurrencyConflict, StreamWrite
from reservekit.events.types import AccountOpened, Metadata
from reservekit.ids import new_id
from reservekit.usecases.context import Authority, IssuedKey


async def open_account(
    authority: Authority, *, name: str, plan: str = "free", operator: bool = False, metadata: Metadata
) -> tuple[AccountState, IssuedKey]:
    """The account and its first key are one append: there is never an account nobody can use."""
    account_id = new_id("acct")
    now = authority.clock.now()
    opened = decide_open_account(
        account_id=account_id, name=name, plan=plan, operator=operator, plans=authority.plans, existing=None
    )
    first = opened[0]
    assert isinstance(first, AccountOpened)
    pending = AccountState(
        account_id=account_id, name=first.name, plan=first.plan, operator=operator, opened_at=now, version=1
    )
    secret, material = authority.new_key_material()
    created = decide_create_key(
        pending,
        material,
        name="first key",
        domains=None,
        scopes=operator_scopes() if operator else None,
        expires_at=None,
        now=now,
    )
    recorded = await authority.store.append(
        [StreamWrite(account_id, 0, opened), StreamWrite(material.key_id, 0, created)], metadata
    )
    account = fold_account(e for e in recorded if e.stream_id == account_id)
    key = fold_key(e for e in recorded if e.stream_id == material.key_id)
    assert account is not None
    assert key is not None
    return account, IssuedKey(key, secret)


async def load_account(authority: Authority, account_id: str) -> AccountState:
    account = (
        fold_account(await authority.store.read_stream(account_id))
        if account_id.startswith("acct_")
        else None
    )
    if account is None:
        raise NotFound(f"account {account_id} not found")
    return account


async def change_plan(
    authority: Authority, *, account_id: str, plan: str, metadata: Metadata
) -> AccountState:
    account = await load_account(authority, account_id)
    events = decide_change_plan(account, plan, authority.plans)
    if not events:
        return account
    try:
        await authority.store.append([StreamWrite(account_id, account.version, events)], metadata)
    except ConcurrencyConflict:
        raise Conflict(f"account {account_id} changed concurrently; retry") from None
    return await load_account(authority, account_id)
