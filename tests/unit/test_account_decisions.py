"""Accounts and the names and plans they are checked against: pure decisions and the fold, on plain values.

Written from the mutation run (docs/security.md): assertions pin exact messages and fields, versions and
boundaries, because the HTTP tests do not look at them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from reservekit.domain.accounts import (
    MAX_NAME_LENGTH,
    AccountState,
    decide_change_plan,
    decide_open_account,
    evolve_account,
    fold_account,
    validate_name,
    validate_plan,
)
from reservekit.domain.errors import Conflict, InvalidInput
from reservekit.domain.events import AccountOpened, AccountPlanChanged, FlagResolved, KeyRevoked
from tests.unit._domain_builders import NOW, PLANS, account, recorded, refused

# Opening and plans ----------------------------------------------------------------------------------


def test_opening_an_account_decides_one_event_with_a_clean_name() -> None:
    events = decide_open_account(
        account_id="acct_a", name="  Acme  ", plan="pro", operator=True, plans=PLANS, existing=None
    )
    assert events == [AccountOpened(account_id="acct_a", name="Acme", plan="pro", operator=True)]


def test_an_account_opens_only_once() -> None:
    exists = refused(
        Conflict, decide_open_account,
        account_id="acct_a", name="A", plan="free", operator=False, plans=PLANS, existing=account(),
    )  # fmt: skip
    assert exists.message == "account acct_a already exists"


@pytest.mark.parametrize(
    ("name", "plan", "field", "message"),
    [
        ("", "free", "name", "name must not be blank"),
        ("a\x00b", "free", "name", "name must be at most 200 printable characters"),
        ("Acme", "gold", "plan", "unknown plan 'gold'; available: free, pro"),
    ],
)
def test_opening_refuses_a_bad_name_or_an_unknown_plan(
    name: str, plan: str, field: str, message: str
) -> None:
    error = refused(
        InvalidInput, decide_open_account,
        account_id="acct_a", name=name, plan=plan, operator=False, plans=PLANS, existing=None,
    )  # fmt: skip
    assert (error.field, error.message) == (field, message)


def test_plans_and_plan_changes() -> None:
    assert validate_plan("pro", PLANS) == "pro"
    unknown = refused(InvalidInput, validate_plan, "gold", PLANS)
    assert (unknown.field, unknown.message) == ("plan", "unknown plan 'gold'; available: free, pro")
    assert decide_change_plan(account(), "pro", PLANS) == [
        AccountPlanChanged(account_id="acct_a", plan="pro")
    ]
    # Changing to the plan the account already has decides nothing, whichever plan that is.
    assert decide_change_plan(account(), "free", PLANS) == []
    assert decide_change_plan(account(plan="pro"), "pro", PLANS) == []
    assert refused(InvalidInput, decide_change_plan, account(), "gold", PLANS).field == "plan"


# Names (of accounts, keys, and revocation reasons) -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "required", "expected"),
    [
        (None, False, None),
        ("  x  ", True, "x"),
        ("a" * MAX_NAME_LENGTH, True, "a" * 200),
        ("a b-é", True, "a b-é"),  # a space and non-ASCII printable characters are fine
    ],
)
def test_names_that_pass(name: str | None, required: bool, expected: str | None) -> None:
    assert validate_name(name, required=required) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (None, "reason is required"),
        ("  ", "reason must not be blank"),
        ("a" * (MAX_NAME_LENGTH + 1), "reason must be at most 200 printable characters"),
        ("a\x1fb", "reason must be at most 200 printable characters"),
    ],
)
def test_names_that_fail_name_their_field(name: str | None, message: str) -> None:
    error = refused(InvalidInput, validate_name, name, field="reason")
    assert (error.field, error.message) == ("reason", message)


@pytest.mark.parametrize("name", ["   ", "a\x7fb", "tab\there"])
def test_blank_or_control_character_names_are_refused_even_when_optional(name: str) -> None:
    # Issue 9: a blank name is a mistake, not a way to say "no name"; DEL and TAB are control characters.
    assert refused(InvalidInput, validate_name, name, required=False).field == "name"


# Fold ----------------------------------------------------------------------------------------------


def test_account_state_folds_from_its_stream_and_ignores_other_events() -> None:
    later = NOW + timedelta(hours=1)
    history = [
        recorded(AccountOpened(account_id="acct_a", name="A", plan="free", operator=True), 1, at=NOW),
        recorded(AccountPlanChanged(account_id="acct_a", plan="pro"), 2, at=later),
        recorded(FlagResolved(flag_id="flg_x", account_id="acct_a", resolution="confirmed"), 3, at=later),
    ]
    state = fold_account(history)
    # Opened at the first event's time; the version is the last event that changed the account.
    assert state == AccountState(
        account_id="acct_a", name="A", plan="pro", operator=True, opened_at=NOW, version=2
    )
    assert fold_account([]) is None
    # A plan change before any opening has nothing to change; an unrelated event changes nothing.
    assert evolve_account(None, history[1]) is None
    assert evolve_account(state, recorded(KeyRevoked(key_id="k", account_id="acct_a"), 4)) == state
