"""The hash chain: ``hash = SHA-256(prev_hash ‖ canonical envelope)``.

Canonical bytes are computed from the *stored* JSON (decoded to plain values, re-encoded with sorted
keys), never from the current Python structs, so events written by older code stay verifiable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import RowMapping

from reservekit.clock import from_micros
from reservekit.domain.events import (
    Metadata,
    RecordedEvent,
    decode_event,
    decode_metadata,
    encode_event,
    encode_metadata,
    event_type,
)
from reservekit.redaction import redact_json

if TYPE_CHECKING:
    from reservekit.usecases.ports import StreamWrite

GENESIS_HASH = "0" * 64
_canonical = msgspec.json.Encoder(order="sorted")


def canonical_bytes(row: Mapping[str, Any] | RowMapping, *, metadata: Any = None) -> bytes:
    """The hashed envelope of a stored row: its JSON columns decoded, then re-encoded with sorted keys.

    ``metadata``: the row's metadata column already decoded (a batch shares one; decoding it once per
    batch rather than once per row is a tenth of an append's cost).
    """
    envelope: dict[str, Any] = {
        "position": int(row["position"]),
        "stream_id": row["stream_id"],
        "stream_version": int(row["stream_version"]),
        "type": row["type"],
        "data": msgspec.json.decode(row["data"]),
        "metadata": msgspec.json.decode(row["metadata"]) if metadata is None else metadata,
        "recorded_at_us": int(row["recorded_at_us"]),
    }
    return _canonical.encode(envelope)


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical).hexdigest()


def row_hash(prev_hash: str, row: Mapping[str, Any] | RowMapping) -> str:
    """What ``hash`` must be for this row after ``prev_hash``: the writer and the verifier both use it."""
    return chain_hash(prev_hash, canonical_bytes(row))


def seal(
    writes: Sequence[StreamWrite],
    metadata: Metadata,
    *,
    head: tuple[int, str] | None,
    recorded_at_us: int,
) -> tuple[list[dict[str, Any]], list[RecordedEvent]]:
    """Number and chain a batch after the head (position, hash; None for an empty log).

    Returns the rows to store and the events they record.

    Every store (SQL or in memory) appends through this, so positions, versions and hashes are made
    one way only. The caller has already checked each stream's version against ``expected_version``.
    """
    position, prev_hash = head or (0, GENESIS_HASH)
    # Redaction happens here, before hashing, for every store: the log never holds a key-shaped
    # string, its chain covers exactly what is stored, and the recorded events carry the same values.
    encoded_metadata = encode_metadata(metadata)
    clean_metadata = redact_json(encoded_metadata)
    if clean_metadata is not encoded_metadata:
        metadata = decode_metadata(clean_metadata)
    metadata_raw = clean_metadata.decode()
    metadata_plain = msgspec.json.decode(clean_metadata)
    recorded_at = from_micros(recorded_at_us)
    rows: list[dict[str, Any]] = []
    recorded: list[RecordedEvent] = []
    for write in writes:
        for offset, original in enumerate(write.events, start=1):
            position += 1
            encoded = encode_event(original)
            clean = redact_json(encoded)
            event = original if clean is encoded else decode_event(clean)
            row: dict[str, Any] = {
                "position": position,
                "stream_id": write.stream_id,
                "stream_version": write.expected_version + offset,
                "account_id": event.account_id,
                "type": event_type(event),
                "data": clean.decode(),
                "metadata": metadata_raw,
                "recorded_at_us": recorded_at_us,
                "prev_hash": prev_hash,
            }
            row["hash"] = chain_hash(prev_hash, canonical_bytes(row, metadata=metadata_plain))
            rows.append(row)
            recorded.append(
                RecordedEvent(
                    position=position,
                    stream_id=write.stream_id,
                    stream_version=row["stream_version"],
                    type=row["type"],
                    data=event,
                    metadata=metadata,
                    recorded_at=recorded_at,
                    prev_hash=prev_hash,
                    hash=row["hash"],
                )
            )
            prev_hash = row["hash"]
    return rows, recorded
