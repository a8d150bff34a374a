"""The middleware's memory: keyed by a salted local hash, kept current by the change feed."""

from __future__ import annotations

from datetime import UTC, datetime

from reservekit_client.middleware import KeyCache
from reservekit_client.models import KeyChange, RateLimit, Verification

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def answer(key_id: str, account_id: str = "acct_a", *, position: int = 10) -> Verification:
    return Verification(
        valid=True,
        code="valid",
        title="API key is valid",
        status=200,
        key_id=key_id,
        account_id=account_id,
        scopes=["services:read"],
        domains=[],
        expires_at=None,
        ratelimit=RateLimit(limit=60, remaining=59, reset=0),
        retry_after=None,
        position=position,
    )


def change(
    kind: str, position: int, key_id: str | None, account_id: str = "acct_a", **extra: object
) -> KeyChange:
    return KeyChange(
        position=position, type=kind, account_id=account_id, key_id=key_id, recorded_at=NOW, **extra
    )  # type: ignore[arg-type]


def test_the_key_itself_is_never_the_cache_key() -> None:
    cache, other = KeyCache(), KeyCache()
    assert cache.digest("sk_rsv_x") != other.digest("sk_rsv_x")  # a random salt per process
    assert b"sk_rsv_x" not in cache.digest("sk_rsv_x")


def test_feed_changes_update_or_forget_remembered_keys() -> None:
    cache = KeyCache()
    digests = {name: cache.digest(name) for name in ("a", "b", "c", "d", "e")}
    cache.remember(digests["a"], answer("key_a"))
    cache.remember(digests["b"], answer("key_b"))
    cache.remember(digests["c"], answer("key_c"))
    cache.remember(digests["d"], answer("key_d", "acct_other"))
    cache.apply(change("key_revoked", 11, "key_a"))
    cache.apply(change("key_rotated", 12, "key_b", new_key_id="key_b2", grace_ends_at=NOW))
    cache.apply(change("key_updated", 13, "key_c"))
    a, b = cache.get(digests["a"]), cache.get(digests["b"])
    assert a is not None
    assert a.revoked
    assert b is not None
    assert b.expires_at == NOW.timestamp()
    assert cache.get(digests["c"]) is None
    cache.apply(change("account_plan_changed", 14, None, "acct_other", plan="pro"))
    assert cache.get(digests["d"]) is None
    assert cache.get(digests["a"]) is not None


def test_an_answer_older_than_a_change_already_seen_is_not_remembered() -> None:
    cache = KeyCache()
    cache.apply(change("key_revoked", 20, "key_a"))
    cache.remember(cache.digest("a"), answer("key_a", position=19))  # from a replica behind the feed
    assert cache.get(cache.digest("a")) is None
    cache.remember(cache.digest("a"), answer("key_a", position=20))
    assert cache.get(cache.digest("a")) is not None


def test_unknown_keys_are_not_remembered_and_memory_is_bounded() -> None:
    cache = KeyCache(capacity=2)
    unknown = answer("key_x")
    unknown.key_id = None
    cache.remember(cache.digest("x"), unknown)
    assert len(cache) == 0
    for name in ("a", "b", "c"):
        cache.remember(cache.digest(name), answer("key_" + name))
    assert len(cache) == 2
    assert cache.get(cache.digest("a")) is None
