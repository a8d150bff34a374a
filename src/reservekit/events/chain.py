"""The hash chain: ``hash = SHA-256(prev_hash ‖ canonical envelope)``.

Canonical bytes are computed from the *stored* JSON (decoded to plain values, re-encoded with sorted
keys), never from the current Python structs, so events written by older code stay verifiable.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

GENESIS_HASH = "0" * 64
_canonical = msgspec.json.Encoder(order="sorted")


def canonical_bytes(
    *,
    position: int,
    stream_id: str,
    stream_version: int,
    type: str,
    data: bytes | str,
    metadata: bytes | str,
    recorded_at_us: int,
) -> bytes:
    envelope: dict[str, Any] = {
        "position": position,
        "stream_id": stream_id,
        "stream_version": stream_version,
        "type": type,
        "data": msgspec.json.decode(data),
        "metadata": msgspec.json.decode(metadata),
        "recorded_at_us": recorded_at_us,
    }
    return _canonical.encode(envelope)


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical).hexdigest()
