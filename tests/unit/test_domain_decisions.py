"""The pure decisions and folds of accounts and keys, without a database.

Written from the mutation run (docs/security.md): every assertion pins a value a mutant changed and
the HTTP tests did not look at (exact messages and fields, versions and positions, boundaries).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
from reservekit.domain.domains import MAX_DOMAINS, normalise_domains
from reservekit.domain.errors import Conflict, DomainError, InvalidInput, NotPermitted
from reservekit.domain.events import (
    AccountOpened,
    AccountPlanChanged,
    Event,
    KeyCreated,
    KeyRevoked,
    KeyRotated,
    LeakReported,
    Metadata,
    RecordedEvent,
)
from reservekit.domain.keys import (
    MAX_GRACE_SECONDS,
    KeyMaterial,
    KeyState,
    decide_create_key,
    decide_revoke,
    decide_rotate,
    evolve_key,
    fold_key,
)
from reservekit.domain.scopes import (
    ACCOUNT_SCOPES,
    KEYS_VERIFY,
    check_grantable,
    operator_scopes,
    resolve_scopes,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PLANS = {"free": 60, "pro": 600}
MATERIAL = KeyMaterial("key_new", "h" * 64, "sk_rsv_AbCd", "WxYz")


def recorded(event: Event, version: int, position: int | None = None, at: datetime = NOW) -> RecordedEvent:
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


def key(**changes: object) -> KeyState:
    base = KeyState(
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
    return KeyState(**{**{f: getattr(base, f) for f in base.__struct_fields__}, **changes})  # type: ignore[arg-type]


def refused(error: type[DomainError], call: object, *args: object, **kwargs: object) -> DomainError:
    with pytest.raises(error) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value


# Accounts ------------------------------------------------------------------------------------------


def test_opening_an_account_validates_and_decides_one_event() -> None:
    events = decide_open_account(
        account_id="acct_a", name="  Acme  ", plan="pro", operator=True, plans=PLANS, existing=None
    )
    assert events == [AccountOpened(account_id="acct_a", name="Acme", plan="pro", operator=True)]
    exists = refused(
        Conflict, decide_open_account,
        account_id="acct_a", name="A", plan="free", operator=False, plans=PLANS, existing=account(),
    )  # fmt: skip
    assert exists.message == "account acct_a already exists"


def test_plans_and_plan_changes() -> None:
    assert validate_plan("pro", PLANS) == "pro"
    unknown = refused(InvalidInput, validate_plan, "gold", PLANS)
    assert (unknown.field, unknown.message) == ("plan", "unknown plan 'gold'; available: free, pro")
    assert decide_change_plan(account(), "free", PLANS) == []
    assert decide_change_plan(account(), "pro", PLANS) == [
        AccountPlanChanged(account_id="acct_a", plan="pro")
    ]
    assert refused(InvalidInput, decide_change_plan, account(), "gold", PLANS).field == "plan"


@pytest.mark.parametrize(
    ("name", "required", "expected"),
    [
        (None, False, None),
        ("  x  ", True, "x"),
        ("a" * MAX_NAME_LENGTH, True, "a" * 200),
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


def test_a_space_and_printable_characters_are_fine() -> None:
    assert validate_name("a b-é", required=True) == "a b-é"


@pytest.mark.parametrize("name", ["   ", "a\x7fb", "tab\there"])
def test_blank_or_control_character_names_are_refused_even_when_optional(name: str) -> None:
    # Issue 9: a blank name is a mistake, not a way to say "no name"; DEL and TAB are control characters.
    assert refused(InvalidInput, validate_name, name, required=False).field == "name"


def test_account_state_folds_from_its_stream() -> None:
    later = NOW + timedelta(hours=1)
    history = [
        recorded(AccountOpened(account_id="acct_a", name="A", plan="free", operator=True), 1, at=NOW),
        recorded(AccountPlanChanged(account_id="acct_a", plan="pro"), 2, at=later),
    ]
    state = fold_account(history)
    assert state == AccountState(
        account_id="acct_a", name="A", plan="pro", operator=True, opened_at=NOW, version=2
    )
    assert fold_account([]) is None
    # A plan change without an opened account is ignored, as is any other event.
    assert evolve_account(None, history[1]) is None
    assert evolve_account(state, recorded(KeyRevoked(key_id="k", account_id="acct_a"), 3)) == state


# Keys ----------------------------------------------------------------------------------------------


def test_creating_a_key_with_everything() -> None:
    (event,) = decide_create_key(
        account(),
        MATERIAL,
        name=" CI ",
        domains=["B.example.com", "a.example.com."],
        scopes=["keys:read", "keys:read", "audit:read"],
        expires_at=NOW + timedelta(days=1),
        now=NOW,
    )
    assert event == KeyCreated(
        key_id="key_new",
        account_id="acct_a",
        key_hash="h" * 64,
        prefix="sk_rsv_AbCd",
        last4="WxYz",
        name="CI",
        domains=("a.example.com", "b.example.com"),
        scopes=("audit:read", "keys:read"),
        expires_at=NOW + timedelta(days=1),
    )


def test_default_scopes_are_the_accounts_minus_platform_admin_and_limited_to_what_can_be_granted() -> None:
    (everything,) = decide_create_key(
        account(operator=True), MATERIAL, name=None, domains=None, scopes=None, expires_at=None, now=NOW
    )
    assert isinstance(everything, KeyCreated)
    assert everything.scopes == tuple(sorted(ACCOUNT_SCOPES))
    grantable = frozenset({"keys:read", "platform:admin"})
    (limited,) = decide_create_key(
        account(),
        MATERIAL,
        name=None,
        domains=None,
        scopes=None,
        expires_at=None,
        now=NOW,
        grantable=grantable,
    )
    assert isinstance(limited, KeyCreated)
    assert limited.scopes == ("keys:read",)


@pytest.mark.parametrize(
    ("expires_at", "message"),
    [
        (datetime(2027, 1, 1), "expires_at must include a timezone offset"),
        (NOW, "expires_at must be in the future"),
        (NOW - timedelta(seconds=1), "expires_at must be in the future"),
    ],
)
def test_bad_expiries(expires_at: datetime, message: str) -> None:
    error = refused(
        InvalidInput, decide_create_key,
        account(), MATERIAL, name=None, domains=None, scopes=None, expires_at=expires_at, now=NOW,
    )  # fmt: skip
    assert (error.field, error.message) == ("expires_at", message)


def test_an_expiry_a_microsecond_ahead_is_fine() -> None:
    soon = NOW + timedelta(microseconds=1)
    (event,) = decide_create_key(
        account(), MATERIAL, name=None, domains=None, scopes=None, expires_at=soon, now=NOW
    )
    assert isinstance(event, KeyCreated)
    assert event.expires_at == soon


def test_scope_rules() -> None:
    assert resolve_scopes(None, operator=False) == tuple(sorted(ACCOUNT_SCOPES))
    assert resolve_scopes(["platform:admin"], operator=True) == ("platform:admin",)
    assert operator_scopes() == tuple(sorted((*ACCOUNT_SCOPES, KEYS_VERIFY, "platform:admin")))
    unknown = refused(InvalidInput, resolve_scopes, ["keys:read", "zz:z", "aa:a"], operator=True)
    assert unknown.field == "scopes"
    assert unknown.message.startswith("unknown scope 'aa:a'; allowed: audit:read, keys:read")
    admin = refused(InvalidInput, resolve_scopes, ["platform:admin"], operator=False)
    assert admin.message == "platform:admin is only available to operator accounts"
    empty = refused(InvalidInput, resolve_scopes, [], operator=True)
    assert (empty.field, empty.message) == ("scopes", "a key needs at least one scope")
    check_grantable(["audit:read"], None)
    check_grantable(["audit:read"], frozenset({"audit:read"}))
    beyond = refused(NotPermitted, check_grantable, ["z:z", "b:b", "audit:read"], frozenset({"audit:read"}))
    assert (beyond.field, beyond.message) == (
        "scopes",
        "the calling key cannot grant scope 'b:b', which it does not hold",
    )
    assert isinstance(beyond, NotPermitted)


def test_domain_lists() -> None:
    assert normalise_domains(None) == ()
    assert normalise_domains([]) == ()
    assert len(normalise_domains([f"d{n}.example.com" for n in range(MAX_DOMAINS)])) == MAX_DOMAINS
    too_many = refused(InvalidInput, normalise_domains, [f"d{n}.io" for n in range(MAX_DOMAINS + 1)])
    assert (too_many.field, too_many.message) == ("domains", "at most 50 domains per key")


def test_revoking() -> None:
    assert decide_revoke(key(), "  leaked ") == [
        KeyRevoked(key_id="key_a", account_id="acct_a", reason="leaked")
    ]
    assert decide_revoke(key(), None) == [KeyRevoked(key_id="key_a", account_id="acct_a", reason=None)]
    assert decide_revoke(key(revoked_at=NOW), "again") == []
    assert refused(InvalidInput, decide_revoke, key(), "\x00").field == "reason"


def test_rotating() -> None:
    expires = NOW + timedelta(days=3)
    old, new = decide_rotate(key(expires_at=expires), MATERIAL, grace_period_seconds=60, now=NOW)
    assert old == [
        KeyRotated(
            key_id="key_a",
            account_id="acct_a",
            new_key_id="key_new",
            grace_ends_at=NOW + timedelta(seconds=60),
        )
    ]
    assert new == [
        KeyCreated(
            key_id="key_new",
            account_id="acct_a",
            key_hash="h" * 64,
            prefix="sk_rsv_AbCd",
            last4="WxYz",
            name="old",
            domains=("a.example.com",),
            scopes=("keys:read",),
            expires_at=expires,
            rotated_from="key_a",
        )
    ]
    assert decide_rotate(key(), MATERIAL, grace_period_seconds=0, now=NOW)[0][0].grace_ends_at == NOW  # type: ignore[union-attr]
    decide_rotate(key(), MATERIAL, grace_period_seconds=MAX_GRACE_SECONDS, now=NOW)
    for grace in (-1, MAX_GRACE_SECONDS + 1):
        error = refused(InvalidInput, decide_rotate, key(), MATERIAL, grace_period_seconds=grace, now=NOW)
        assert (error.field, error.message) == (
            "grace_period_seconds",
            "grace_period_seconds must be between 0 and 604800",
        )
    revoked = refused(Conflict, decide_rotate, key(revoked_at=NOW), MATERIAL, grace_period_seconds=0, now=NOW)
    assert revoked.message == "key key_a is revoked and cannot be rotated"
    expired = refused(Conflict, decide_rotate, key(expires_at=NOW), MATERIAL, grace_period_seconds=0, now=NOW)
    assert expired.message == "key key_a is expired and cannot be rotated"
    again = refused(
        Conflict, decide_rotate, key(rotated_to="key_b"), MATERIAL, grace_period_seconds=0, now=NOW
    )
    assert again.message == "key key_a was already rotated to key_b"


def test_status() -> None:
    assert key().status(NOW) == "active"
    assert key(expires_at=NOW + timedelta(microseconds=1)).status(NOW) == "active"
    assert key(expires_at=NOW).status(NOW) == "expired"
    assert key(revoked_at=NOW, expires_at=NOW).status(NOW) == "revoked"


def test_key_state_folds_from_its_stream() -> None:
    created = KeyCreated(
        key_id="key_a", account_id="acct_a", key_hash="k" * 64, prefix="sk_rsv_AAAA", last4="ZZZZ",
        name="old", domains=("a.example.com",), scopes=("keys:read",), expires_at=None, rotated_from="key_0",
    )  # fmt: skip
    revoked_at = NOW + timedelta(minutes=5)
    history = [
        recorded(created, 1, position=3),
        recorded(KeyRevoked(key_id="key_a", account_id="acct_a", reason="why"), 2, position=7, at=revoked_at),
        recorded(
            LeakReported(key_id="key_a", account_id="acct_a"), 3, position=9, at=revoked_at + timedelta(1)
        ),
    ]
    state = fold_key(history)
    assert state == key(
        rotated_from="key_0", revoked_at=revoked_at, revoke_reason="why", version=3, position=9
    )
    assert fold_key([]) is None
    assert evolve_key(None, history[1]) is None
    leaked = evolve_key(key(), recorded(LeakReported(key_id="key_a", account_id="acct_a"), 2, position=4))
    assert leaked == key(revoked_at=NOW, revoke_reason="leak reported", version=2, position=4)


def test_rotation_sets_the_earlier_of_expiry_and_grace_end() -> None:
    grace_end = NOW + timedelta(hours=1)
    rotated = recorded(
        KeyRotated(key_id="key_a", account_id="acct_a", new_key_id="key_b", grace_ends_at=grace_end),
        2,
        position=5,
    )
    assert evolve_key(key(), rotated) == key(rotated_to="key_b", expires_at=grace_end, version=2, position=5)
    sooner = NOW + timedelta(minutes=1)
    assert evolve_key(key(expires_at=sooner), rotated).expires_at == sooner  # type: ignore[union-attr]
    later = NOW + timedelta(days=1)
    assert evolve_key(key(expires_at=later), rotated).expires_at == grace_end  # type: ignore[union-attr]
    other = recorded(AccountPlanChanged(account_id="acct_a", plan="pro"), 9)
    assert evolve_key(key(), other) == key()
