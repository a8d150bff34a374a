"""API keys, their scopes and domains: pure create/revoke/rotate decisions and the fold, on plain values.

Written from the mutation run (docs/security.md): assertions pin exact messages and fields, versions and
positions, boundaries, because the HTTP tests do not look at them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from reservekit.domain.domains import MAX_DOMAINS, normalise_domains
from reservekit.domain.errors import Conflict, DomainError, InvalidInput, NotPermitted
from reservekit.domain.events import (
    AccountPlanChanged,
    Event,
    KeyCreated,
    KeyRevoked,
    KeyRotated,
    LeakReported,
)
from reservekit.domain.keys import (
    MAX_GRACE_SECONDS,
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
from tests.unit._domain_builders import MATERIAL, NOW, account, key, recorded, refused


def create(*, operator: bool = False, **changes: object) -> KeyCreated:
    """The one event of creating a key with nothing asked for but ``changes``."""
    arguments: dict[str, object] = {"name": None, "domains": None, "scopes": None, "expires_at": None}
    (event,) = decide_create_key(account(operator=operator), MATERIAL, now=NOW, **{**arguments, **changes})  # type: ignore[arg-type]
    assert isinstance(event, KeyCreated)
    return event


# Create --------------------------------------------------------------------------------------------


def test_creating_a_key_with_everything() -> None:
    event = create(
        name=" CI ",
        domains=["B.example.com", "a.example.com."],
        scopes=["keys:read", "keys:read", "audit:read"],
        expires_at=NOW + timedelta(days=1),
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


@pytest.mark.parametrize("operator", [False, True])
def test_default_scopes_are_the_accounts_without_platform_admin(operator: bool) -> None:
    assert create(operator=operator).scopes == tuple(sorted(ACCOUNT_SCOPES))


def test_default_scopes_keep_only_what_the_creator_may_grant() -> None:
    # platform:admin is grantable here but never a default; the two defaults that are grantable stay.
    grantable = frozenset({"keys:read", "services:read", "platform:admin"})
    assert create(grantable=grantable).scopes == ("keys:read", "services:read")


@pytest.mark.parametrize(
    ("changes", "error", "field", "message"),
    [
        (
            {"expires_at": datetime(2027, 1, 1)},
            InvalidInput,
            "expires_at",
            "expires_at must include a timezone offset",
        ),
        ({"expires_at": NOW}, InvalidInput, "expires_at", "expires_at must be in the future"),
        (
            {"expires_at": NOW - timedelta(seconds=1)},
            InvalidInput,
            "expires_at",
            "expires_at must be in the future",
        ),
        ({"scopes": ["nope"]}, InvalidInput, "scopes", "unknown scope 'nope'; allowed: audit:read"),
        ({"scopes": ["platform:admin"]}, InvalidInput, "scopes", "platform:admin is only available"),
        ({"domains": ["http://a.com"]}, InvalidInput, "domains", "domain 'http://a.com' must be a host name"),
        ({"name": "  "}, InvalidInput, "name", "name must not be blank"),
        (
            {"scopes": ["audit:read"], "grantable": frozenset({"keys:write"})},
            NotPermitted,
            "scopes",
            "the calling key cannot grant scope 'audit:read'",
        ),
    ],
)
def test_creating_refuses(
    changes: dict[str, object], error: type[DomainError], field: str, message: str
) -> None:
    refusal = refused(error, create, **changes)
    assert type(refusal) is error
    assert refusal.field == field
    assert refusal.message.startswith(message)


def test_an_expiry_a_microsecond_ahead_is_fine() -> None:
    soon = NOW + timedelta(microseconds=1)
    assert create(expires_at=soon).expires_at == soon


# Scopes and domains --------------------------------------------------------------------------------


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


# Revoke and rotate ---------------------------------------------------------------------------------


def test_revoking() -> None:
    assert decide_revoke(key(), "  leaked ") == [
        KeyRevoked(key_id="key_a", account_id="acct_a", reason="leaked")
    ]
    assert decide_revoke(key(), None) == [KeyRevoked(key_id="key_a", account_id="acct_a", reason=None)]
    # Revoking a revoked key decides nothing, whatever the reason.
    assert decide_revoke(key(revoked_at=NOW), "again") == []
    assert decide_revoke(key(revoked_at=NOW), None) == []
    assert refused(InvalidInput, decide_revoke, key(), "\x00").field == "reason"


def test_rotating_creates_a_twin_and_ends_the_old_key_after_the_grace_period() -> None:
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


def grace_end(events: tuple[list[Event], list[Event]]) -> datetime:
    rotated = events[0][0]
    assert isinstance(rotated, KeyRotated)
    return rotated.grace_ends_at


def test_the_grace_period_runs_from_zero_to_a_week() -> None:
    assert grace_end(decide_rotate(key(), MATERIAL, grace_period_seconds=0, now=NOW)) == NOW
    week = decide_rotate(key(), MATERIAL, grace_period_seconds=MAX_GRACE_SECONDS, now=NOW)
    assert grace_end(week) == NOW + timedelta(days=7)
    for grace in (-1, MAX_GRACE_SECONDS + 1):
        error = refused(InvalidInput, decide_rotate, key(), MATERIAL, grace_period_seconds=grace, now=NOW)
        assert (error.field, error.message) == (
            "grace_period_seconds",
            "grace_period_seconds must be between 0 and 604800",
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"revoked_at": NOW}, "key key_a is revoked and cannot be rotated"),
        ({"expires_at": NOW}, "key key_a is expired and cannot be rotated"),
        ({"rotated_to": "key_b"}, "key key_a was already rotated to key_b"),
    ],
)
def test_only_a_live_key_not_yet_rotated_can_rotate(changes: dict[str, object], message: str) -> None:
    error = refused(Conflict, decide_rotate, key(**changes), MATERIAL, grace_period_seconds=0, now=NOW)
    assert error.message == message


# Status and fold -----------------------------------------------------------------------------------


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
    # A leak reported after the revocation keeps the revocation's time and reason; version and position move.
    assert fold_key(history) == key(
        rotated_from="key_0", revoked_at=revoked_at, revoke_reason="why", version=3, position=9
    )
    assert fold_key([]) is None
    # Key events before a creation fold to nothing.
    assert fold_key(history[1:]) is None


def test_a_leak_report_revokes_and_a_later_revocation_keeps_its_time_and_reason() -> None:
    later = NOW + timedelta(minutes=5)
    leak = recorded(
        LeakReported(key_id="key_a", account_id="acct_a", source="a paste"), 2, position=4, at=later
    )
    leaked = evolve_key(key(), leak)
    assert leaked == key(revoked_at=later, revoke_reason="leak reported", version=2, position=4)
    revoke = recorded(
        KeyRevoked(key_id="key_a", account_id="acct_a", reason="x"),
        3,
        position=6,
        at=later + timedelta(hours=1),
    )
    assert evolve_key(leaked, revoke) == key(
        revoked_at=later, revoke_reason="leak reported", version=3, position=6
    )


def test_rotation_ends_a_key_at_the_earlier_of_its_expiry_and_the_grace_end() -> None:
    grace_ends = NOW + timedelta(hours=1)
    rotated = recorded(
        KeyRotated(key_id="key_a", account_id="acct_a", new_key_id="key_b", grace_ends_at=grace_ends),
        2,
        position=5,
    )
    assert evolve_key(key(), rotated) == key(rotated_to="key_b", expires_at=grace_ends, version=2, position=5)
    sooner = NOW + timedelta(minutes=1)
    assert evolve_key(key(expires_at=sooner), rotated) == key(
        rotated_to="key_b", expires_at=sooner, version=2, position=5
    )
    later = NOW + timedelta(days=1)
    assert evolve_key(key(expires_at=later), rotated).expires_at == grace_ends  # type: ignore[union-attr]
    other = recorded(AccountPlanChanged(account_id="acct_a", plan="pro"), 9)
    assert evolve_key(key(), other) == key()
