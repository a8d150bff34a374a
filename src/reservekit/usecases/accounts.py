"""Open accounts (with their first key) and change plans."""

from __future__ import annotations

from reservekit.domain.accounts import AccountState, decide_change_plan, decide_open_account, fold_account
from reservekit.domain.errors import ConcurrentChange, NotFound
from reservekit.domain.events import AccountOpened, Metadata
from reservekit.domain.keys import decide_create_key, fold_key
from reservekit.domain.scopes import operator_scopes
from reservekit.ids import new_id
from reservekit.usecases.commands import ChangePlan, IssuedKey, OpenAccount, OpenedAccount
from reservekit.usecases.dependencies import Handled, HandlerDependencies
from reservekit.usecases.ports import ConcurrencyConflict, EventStore, StreamWrite


async def load_account(store: EventStore, account_id: str) -> AccountState:
    account = fold_account(await store.read_stream(account_id)) if account_id.startswith("acct_") else None
    if account is None:
        raise NotFound(f"account {account_id} not found")
    return account


async def handle_open_account(
    command: OpenAccount, deps: HandlerDependencies, metadata: Metadata
) -> Handled[OpenedAccount]:
    """The account and its first key are one append: there is never an account nobody can use."""
    account_id = new_id("acct")
    now = deps.clock.now()
    opened = decide_open_account(
        account_id=account_id,
        name=command.name,
        plan=command.plan,
        operator=command.operator,
        plans=deps.plans,
        existing=None,
    )
    first = opened[0]
    assert isinstance(first, AccountOpened)
    pending = AccountState(
        account_id=account_id,
        name=first.name,
        plan=first.plan,
        operator=command.operator,
        opened_at=now,
        version=1,
    )
    secret, material = deps.new_key_material()
    created = decide_create_key(
        pending,
        material,
        name="first key",
        domains=None,
        scopes=operator_scopes() if command.operator else None,
        expires_at=None,
        now=now,
    )
    recorded = await deps.store.append(
        [StreamWrite(account_id, 0, opened), StreamWrite(material.key_id, 0, created)], metadata
    )
    account = fold_account(e for e in recorded if e.stream_id == account_id)
    key = fold_key(e for e in recorded if e.stream_id == material.key_id)
    assert account is not None
    assert key is not None
    return Handled(OpenedAccount(account, IssuedKey(key, secret)), recorded[-1].position)


async def handle_change_plan(
    command: ChangePlan, deps: HandlerDependencies, metadata: Metadata
) -> Handled[AccountState]:
    account = await load_account(deps.store, command.account_id)
    events = decide_change_plan(account, command.plan, deps.plans)
    if not events:
        return Handled(account)
    try:
        recorded = await deps.store.append(
            [StreamWrite(command.account_id, account.version, events)], metadata
        )
    except ConcurrencyConflict:
        raise ConcurrentChange(f"account {command.account_id} changed concurrently; retry") from None
    return Handled(await load_account(deps.store, command.account_id), recorded[-1].position)
