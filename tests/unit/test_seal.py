"""``chain.seal``: how every store numbers, chains and redacts an append (no database needed)."""

from __future__ import annotations

from reservekit.clock import from_micros
from reservekit.domain.events import AccountOpened, KeyRevoked, Metadata
from reservekit.events.chain import GENESIS_HASH, row_hash, seal
from reservekit.keys.tokens import generate_secret
from reservekit.usecases.ports import StreamWrite


def test_seal_numbers_chains_and_redacts() -> None:
    secret = generate_secret()
    metadata = Metadata(request_id="req_1", user_agent=f"ua {secret}")
    writes = [
        StreamWrite("acct_a", 2, [AccountOpened(account_id="acct_a", name=f"n {secret}", plan="free")]),
        StreamWrite(
            "key_b",
            0,
            [
                KeyRevoked(key_id="key_b", account_id="acct_a", reason="r1"),
                KeyRevoked(key_id="key_b", account_id="acct_a", reason="r2"),
            ],
        ),
    ]
    rows, recorded = seal(writes, metadata, head=(7, "ab" * 32), recorded_at_us=1_000_000)
    assert [r["position"] for r in rows] == [8, 9, 10]
    assert [r["stream_id"] for r in rows] == ["acct_a", "key_b", "key_b"]
    assert [r["stream_version"] for r in rows] == [3, 1, 2]
    assert [r["type"] for r in rows] == ["account_opened", "key_revoked", "key_revoked"]
    assert [r["account_id"] for r in rows] == ["acct_a"] * 3
    assert [r["recorded_at_us"] for r in rows] == [1_000_000] * 3
    assert rows[0]["prev_hash"] == "ab" * 32
    assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
    assert all(r["hash"] == row_hash(r["prev_hash"], r) for r in rows)
    stored = repr(rows) + repr(recorded)
    assert secret not in stored
    opened = '"account_id":"acct_a","name":"n sk_rsv_[REDACTED]","plan":"free","operator":false'
    assert rows[0]["data"] == '{"type":"account_opened",' + opened + "}"
    assert rows[0]["metadata"] == '{"request_id":"req_1","user_agent":"ua sk_rsv_[REDACTED]"}'
    assert rows[1]["data"] == '{"type":"key_revoked","key_id":"key_b","account_id":"acct_a","reason":"r1"}'
    assert [e.position for e in recorded] == [8, 9, 10]
    assert [e.stream_version for e in recorded] == [3, 1, 2]
    assert [e.stream_id for e in recorded] == ["acct_a", "key_b", "key_b"]
    assert [e.type for e in recorded] == ["account_opened", "key_revoked", "key_revoked"]
    assert [e.hash for e in recorded] == [r["hash"] for r in rows]
    assert [e.prev_hash for e in recorded] == [r["prev_hash"] for r in rows]
    assert recorded[0].data == AccountOpened(account_id="acct_a", name="n sk_rsv_[REDACTED]", plan="free")
    assert recorded[1].data == KeyRevoked(key_id="key_b", account_id="acct_a", reason="r1")
    assert recorded[0].metadata == Metadata(request_id="req_1", user_agent="ua sk_rsv_[REDACTED]")
    assert all(e.recorded_at == from_micros(1_000_000) for e in recorded)


def test_seal_starts_an_empty_log_at_genesis() -> None:
    rows, recorded = seal(
        [StreamWrite("acct_a", 0, [AccountOpened(account_id="acct_a", name="n", plan="free")])],
        Metadata(),
        head=None,
        recorded_at_us=5,
    )
    assert (rows[0]["position"], rows[0]["stream_version"], rows[0]["prev_hash"]) == (1, 1, GENESIS_HASH)
    assert recorded[0].metadata == Metadata()
    assert rows[0]["metadata"] == "{}"
