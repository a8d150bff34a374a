"""Cached keys share their scope sets and domain lists (issue 14: the key view's memory per key)."""

from __future__ import annotations

from datetime import UTC, datetime

from reservekit.auth.key_view import CachedKey
from reservekit.domain.keys import KeyState


def state(key_id: str, scopes: tuple[str, ...], domains: tuple[str, ...] = ()) -> KeyState:
    return KeyState(
        key_id=key_id,
        account_id="".join(["acct_", "shared"]),  # a fresh string per key, as decoded from the log
        key_hash=key_id * 2,
        prefix="sk_rsv_abcd",
        last4="wxyz",
        name=None,
        domains=tuple("".join([d[:1], d[1:]]) for d in domains),
        scopes=tuple("".join([s[:1], s[1:]]) for s in scopes),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        expires_at=None,
    )


def test_keys_with_the_same_scopes_and_domains_share_one_set_and_one_tuple() -> None:
    a = CachedKey(state("key_a", ("services:read", "keys:read"), ("app.example.com",)))
    b = CachedKey(state("key_b", ("keys:read", "services:read"), ("app.example.com",)))
    c = CachedKey(state("key_c", ("services:read",)))
    assert a.scopes == frozenset({"services:read", "keys:read"})
    assert a.scopes is b.scopes
    assert a.domains == ("app.example.com",)
    assert a.domains is b.domains
    assert a.account_id is b.account_id
    assert c.scopes == frozenset({"services:read"})
    assert c.scopes is not a.scopes
    assert c.domains == ()
    assert not c.operator
    assert CachedKey(state("key_d", ("platform:admin", "keys:read"))).operator
