"""Every decide_*/evolve_*/fold_* rule on plain values: no database, no clock, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from reservekit.domain.accounts import (
    AccountState,
    decide_change_plan,
    decide_open_account,
    evolve_account,
    fold_account,
)
from reservekit.domain.errors import Conflict, InvalidInput, NotPermitted
from reservekit.domain.events import (
    AccountOpened,
    AccountPlanChanged,
    Event,
    FlagResolved,
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
from reservekit.domain.scopes import ACCOUNT_SCOPES

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PLANS = {"free": 60, "pro": 600}
MATERIAL = KeyMaterial("key_new", "hash_new", "sk_rsv_abcd", "wxyz")


def recorded(
    events: Sequence[Event], stream_id: str, *, at: datetime = NOW, first: int = 1
) -> list[RecordedEvent]:
    """Events as the store would record them: versions from ``first``, positions alike."""
    return [
        RecordedEvent(
            position=first + n,
            stream_id=stream_id,
            stream_version=first + n,
            type="",
            data=event,
            metadata=Metadata(),
            recorded_at=at,
            prev_hash="",
            hash="",
        )
        for n, event in enumerate(events)
    ]


def account(*, operator: bool = False, plan: str = "free") -> AccountState:
    return AccountState(
        account_id="acct_a", name="Acme", plan=plan, operator=operator, opened_at=NOW, version=1
    )


def created_key(*, expires_at: datetime | None = None) -> KeyState:
    events = decide_create_key(
        account(), MATERIAL, name="k", domains=None, scopes=None, expires_at=expires_at, now=NOW
    )
    state = fold_key(recorded(events, "key_new"))
    assert state is not None
    return state


# --- accounts -----------------------------------------------------------------------------------


def test_open_account_decides_one_opened_event_with_a_clean_name_and_known_plan() -> None:
    [event] = decide_open_account(
        account_id="acct_a", name="  Acme  ", plan="pro", operator=True, plans=PLANS, existing=None
    )
    assert event == AccountOpened(account_id="acct_a", name="Acme", plan="pro", operator=True)


@pytest.mark.parametrize(
    ("name", "plan", "field"), [("", "free", "name"), ("Acme", "gold", "plan"), ("a\x00b", "free", "name")]
)
def test_open_account_refuses_blank_names_and_unknown_plans(name: str, plan: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decide_open_account(
            account_id="acct_a", name=name, plan=plan, operator=False, plans=PLANS, existing=None
        )
    assert refused.value.field == field


def test_an_account_opens_only_once() -> None:
    with pytest.raises(Conflict):
        decide_open_account(
            account_id="acct_a", name="A", plan="free", operator=False, plans=PLANS, existing=account()
        )


def test_change_plan_decides_a_change_or_nothing_and_refuses_unknown_plans() -> None:
    assert decide_change_plan(account(), "pro", PLANS) == [
        AccountPlanChanged(account_id="acct_a", plan="pro")
    ]
    assert decide_change_plan(account(plan="pro"), "pro", PLANS) == []
    with pytest.raises(InvalidInput):
        decide_change_plan(account(), "gold", PLANS)


def test_fold_account_follows_opening_and_plan_changes_and_ignores_other_events() -> None:
    history = recorded(
        [
            AccountOpened(account_id="acct_a", name="Acme", plan="free"),
            AccountPlanChanged(account_id="acct_a", plan="pro"),
            FlagResolved(flag_id="flg_x", account_id="acct_a", resolution="confirmed"),
        ],
        "acct_a",
    )
    state = fold_account(history)
    assert state == AccountState(
        account_id="acct_a", name="Acme", plan="pro", operator=False, opened_at=NOW, version=2
    )
    assert fold_account([]) is None
    # A plan change before any opening has nothing to change.
    assert evolve_account(None, history[1]) is None


# --- keys: create -------------------------------------------------------------------------------


def test_create_key_records_material_and_default_scopes_never_the_secret() -> None:
    [event] = decide_create_key(
        account(), MATERIAL, name=" web ", domains=["Example.COM"], scopes=None, expires_at=None, now=NOW
    )
    assert isinstance(event, KeyCreated)
    assert (event.key_id, event.key_hash, event.prefix, event.last4) == (
        "key_new",
        "hash_new",
        "sk_rsv_abcd",
        "wxyz",
    )
    assert (event.name, event.domains, event.scopes) == (
        "web",
        ("example.com",),
        tuple(sorted(ACCOUNT_SCOPES)),
    )


def test_create_key_with_default_scopes_keeps_only_what_the_creator_may_grant() -> None:
    [event] = decide_create_key(
        account(), MATERIAL, name=None, domains=None, scopes=None, expires_at=None, now=NOW,
        grantable=frozenset({"keys:read", "services:read"}),
    )  # fmt: skip
    assert isinstance(event, KeyCreated)
    assert event.scopes == ("keys:read", "services:read")


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"expires_at": NOW - timedelta(seconds=1)}, InvalidInput, "expires_at"),
        ({"expires_at": datetime(2027, 1, 1)}, InvalidInput, "expires_at"),  # no offset
        ({"scopes": ["nope"]}, InvalidInput, "scopes"),
        ({"scopes": ["platform:admin"]}, InvalidInput, "scopes"),  # not an operator account
        ({"domains": ["http://a.com"]}, InvalidInput, None),
        ({"scopes": ["audit:read"], "grantable": frozenset({"keys:write"})}, NotPermitted, None),
    ],
)
def test_create_key_refuses(changes: dict[str, object], error: type[Exception], field: str | None) -> None:
    arguments: dict[str, object] = {
        "name": None,
        "domains": None,
        "scopes": None,
        "expires_at": None,
        "now": NOW,
    }
    with pytest.raises(error) as refused:
        decide_create_key(account(), MATERIAL, **{**arguments, **changes})  # type: ignore[arg-type]
    if field is not None:
        assert getattr(refused.value, "field", None) == field


# --- keys: revoke, rotate, evolve ---------------------------------------------------------------


def test_revoke_decides_one_event_and_nothing_for_a_revoked_key() -> None:
    key = created_key()
    assert decide_revoke(key, " gone ") == [KeyRevoked(key_id="key_new", account_id="acct_a", reason="gone")]
    revoked = evolve_key(
        key, recorded([KeyRevoked(key_id="key_new", account_id="acct_a")], "key_new", first=2)[0]
    )
    assert revoked is not None
    assert decide_revoke(revoked, None) == []


def test_rotate_creates_a_twin_and_ends_the_old_key_after_the_grace_period() -> None:
    key = created_key()
    old_events, new_events = decide_rotate(key, MATERIAL, grace_period_seconds=60, now=NOW)
    assert old_events == [
        KeyRotated(
            key_id="key_new",
            account_id="acct_a",
            new_key_id="key_new",
            grace_ends_at=NOW + timedelta(seconds=60),
        )
    ]
    [twin] = new_events
    assert isinstance(twin, KeyCreated)
    assert (twin.rotated_from, twin.scopes, twin.name) == ("key_new", key.scopes, key.name)


@pytest.mark.parametrize("grace", [-1, MAX_GRACE_SECONDS + 1])
def test_rotate_refuses_a_grace_period_out_of_range(grace: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        decide_rotate(created_key(), MATERIAL, grace_period_seconds=grace, now=NOW)
    assert refused.value.field == "grace_period_seconds"


def test_rotate_refuses_revoked_expired_and_already_rotated_keys() -> None:
    key = created_key()
    revoked = msgspec.structs.replace(key, revoked_at=NOW)
    rotated = msgspec.structs.replace(key, rotated_to="key_b")
    expiring = created_key(expires_at=NOW + timedelta(hours=1))
    with pytest.raises(Conflict, match="revoked"):
        decide_rotate(revoked, MATERIAL, grace_period_seconds=0, now=NOW)
    with pytest.raises(Conflict, match="already rotated"):
        decide_rotate(rotated, MATERIAL, grace_period_seconds=0, now=NOW)
    with pytest.raises(Conflict, match="expired"):
        decide_rotate(expiring, MATERIAL, grace_period_seconds=0, now=NOW + timedelta(hours=1))


def test_fold_key_tracks_revocation_leaks_rotation_and_status() -> None:
    created = recorded(
        decide_create_key(
            account(), MATERIAL, name=None, domains=None, scopes=None, expires_at=None, now=NOW
        ),
        "key_new",
    )
    later = NOW + timedelta(minutes=5)
    leaked = recorded(
        [LeakReported(key_id="key_new", account_id="acct_a", source="a paste")], "key_new", at=later, first=2
    )
    state = fold_key([*created, *leaked])
    assert state is not None
    assert (state.revoked_at, state.revoke_reason, state.version, state.position) == (
        later,
        "leak reported",
        2,
        2,
    )
    assert state.status(later) == "revoked"
    # A second revocation keeps the first one's time and reason; only the version moves.
    again = evolve_key(
        state,
        recorded(
            [KeyRevoked(key_id="key_new", account_id="acct_a", reason="x")],
            "key_new",
            at=later + timedelta(hours=1),
            first=3,
        )[0],
    )
    assert again is not None
    assert (again.revoked_at, again.revoke_reason, again.version) == (later, "leak reported", 3)


def test_rotation_ends_a_key_at_the_earlier_of_its_expiry_and_the_grace_end() -> None:
    expiry = NOW + timedelta(hours=1)
    created = recorded(
        decide_create_key(
            account(), MATERIAL, name=None, domains=None, scopes=None, expires_at=expiry, now=NOW
        ),
        "key_new",
    )
    long_grace = KeyRotated(
        key_id="key_new", account_id="acct_a", new_key_id="key_b", grace_ends_at=NOW + timedelta(days=1)
    )
    state = fold_key([*created, *recorded([long_grace], "key_new", first=2)])
    assert state is not None
    assert (state.expires_at, state.rotated_to) == (expiry, "key_b")
    assert state.status(expiry) == "expired"
    assert state.status(expiry - timedelta(microseconds=1)) == "active"


def test_key_events_before_a_creation_fold_to_nothing() -> None:
    assert fold_key(recorded([KeyRevoked(key_id="key_x", account_id="acct_a")], "key_x")) is None
    assert fold_key([]) is None
