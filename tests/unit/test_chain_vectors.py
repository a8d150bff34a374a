"""Known-answer vectors for the hash chain: a fixed envelope must give these exact bytes and hashes.

Any change to the canonical encoding or to how ``prev_hash`` enters the hash breaks every stored
chain, so it must break these tests first. The hex values were checked with ``sha256sum`` over
``prev_hash bytes ‖ canonical bytes``.
"""

from __future__ import annotations

from reservekit.events.chain import GENESIS_HASH, canonical_bytes, chain_hash, row_hash

ENVELOPE: dict[str, object] = {
    "position": 7,
    "stream_id": "key_abc",
    "stream_version": 2,
    "type": "key_revoked",
    # Stored JSON in any key order and spacing; non-ASCII must come out as UTF-8, not \\u escapes.
    "data": '{"key_id": "key_abc", "account_id":"acct_x", "reason":"leak \u00e9"}',
    "metadata": '{"source":"cli","request_id":"req_1"}',
    "recorded_at_us": 1795865716988280,
}
CANONICAL = (
    b'{"data":{"account_id":"acct_x","key_id":"key_abc","reason":"leak \xc3\xa9"},'
    b'"metadata":{"request_id":"req_1","source":"cli"},"position":7,'
    b'"recorded_at_us":1795865716988280,"stream_id":"key_abc","stream_version":2,"type":"key_revoked"}'
)


def test_canonical_bytes_known_answer() -> None:
    assert canonical_bytes(ENVELOPE) == CANONICAL
    # Columns the envelope does not cover (account_id, the hashes) change nothing.
    assert canonical_bytes(ENVELOPE | {"account_id": "x", "prev_hash": "y", "hash": "z"}) == CANONICAL


def test_canonical_bytes_accept_bytes_as_stored() -> None:
    as_bytes = ENVELOPE | {"data": ENVELOPE["data"].encode(), "metadata": ENVELOPE["metadata"].encode()}  # type: ignore[union-attr]
    assert canonical_bytes(as_bytes) == CANONICAL


def test_row_hash_is_chain_hash_of_the_canonical_bytes() -> None:
    assert row_hash("ab" * 32, ENVELOPE) == (
        "ae2f11f5d1ae6db656e427330ab9a2b43d1496bd6184111441229e1faa498da3"
    )


def test_chain_hash_known_answers() -> None:
    assert chain_hash(GENESIS_HASH, CANONICAL) == (
        "c8332e3413dfd77976ce8ef6a9708e5197bac31109984c3b7c1c92aaba5c13ff"
    )
    assert chain_hash("ab" * 32, CANONICAL) == (
        "ae2f11f5d1ae6db656e427330ab9a2b43d1496bd6184111441229e1faa498da3"
    )


def test_every_envelope_field_changes_the_canonical_bytes() -> None:
    changed = {
        "position": 8,
        "stream_id": "key_abd",
        "stream_version": 3,
        "type": "key_rotated",
        "data": '{"account_id":"acct_x"}',
        "metadata": '{"source":"api"}',
        "recorded_at_us": 1795865716988281,
    }
    for field, value in changed.items():
        assert canonical_bytes(ENVELOPE | {field: value}) != CANONICAL, field
