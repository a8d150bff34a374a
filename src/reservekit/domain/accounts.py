"""Accounts: tenants with a plan. Decisions are pure; state is folded from the account's stream."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime

import msgspec

from reservekit.domain.errors import Conflict, InvalidInput
from reservekit.domain.events import AccountOpened, AccountPlanChanged, Event, RecordedEvent

MAX_NAME_LENGTH = 200


class AccountState(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    name: str
    plan: str
    operator: bool
    opened_at: datetime
    version: int


def evolve_account(state: AccountState | None, recorded: RecordedEvent) -> AccountState | None:
    match recorded.data:
        case AccountOpened(account_id=account_id, name=name, plan=plan, operator=operator):
            return AccountState(
                account_id=account_id,
                name=name,
                plan=plan,
                operator=operator,
                opened_at=recorded.recorded_at,
                version=recorded.stream_version,
            )
        case AccountPlanChanged(plan=plan) if state is not None:
            return msgspec.structs.replace(state, plan=plan, version=recorded.stream_version)
    return state


def fold_account(history: Iterable[RecordedEvent]) -> AccountState | None:
    state: AccountState | None = None
    for recorded in history:
        state = evolve_account(state, recorded)
    return state


def validate_name(name: str | None, *, field: str = "name", required: bool = True) -> str | None:
    if name is None:
        if required:
            raise InvalidInput(f"{field} is required", field=field)
        return None
    cleaned = name.strip()
    if not cleaned:
        # A blank name is a mistake, not a way to say "no name": omit the field (or send null) for that.
        raise InvalidInput(f"{field} must not be blank", field=field)
    if len(cleaned) > MAX_NAME_LENGTH or any(unicodedata.category(ch) == "Cc" for ch in cleaned):
        raise InvalidInput(f"{field} must be at most {MAX_NAME_LENGTH} printable characters", field=field)
    return cleaned


def validate_plan(plan: str, plans: Mapping[str, int]) -> str:
    if plan not in plans:
        raise InvalidInput(f"unknown plan {plan!r}; available: {', '.join(sorted(plans))}", field="plan")
    return plan


def decide_open_account(
    *,
    account_id: str,
    name: str,
    plan: str,
    operator: bool,
    plans: Mapping[str, int],
    existing: AccountState | None,
) -> list[Event]:
    if existing is not None:
        raise Conflict(f"account {account_id} already exists")
    checked = validate_name(name)
    assert checked is not None
    return [
        AccountOpened(account_id=account_id, name=checked, plan=validate_plan(plan, plans), operator=operator)
    ]


def decide_change_plan(state: AccountState, plan: str, plans: Mapping[str, int]) -> list[Event]:
    validate_plan(plan, plans)
    if plan == state.plan:
        return []
    return [AccountPlanChanged(account_id=state.account_id, plan=plan)]
