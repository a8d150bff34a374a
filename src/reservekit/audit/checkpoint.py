"""Signed checkpoints of the log head, kept outside the database.

The hash chain shows that no event was altered *relative to the events after it*; an attacker who can
write the database could still truncate the log or rewrite its tail and recompute the chain. A
checkpoint (position, hash, count) signed with an Ed25519 key that never lives in the database pins
the head as it was: verifying later detects a log that is shorter, or whose event at that position
has a different hash.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.db import read_only_transaction
from reservekit.events.tables import events
from reservekit.events.verify import ChainReport


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    hash: str
    count: int
    created_at: datetime
    public_key: str  # base64 raw Ed25519 public key
    signature: str = ""  # base64 signature over the canonical bytes of the other fields

    def signed_bytes(self) -> bytes:
        unsigned = msgspec.structs.replace(self, signature="")
        return msgspec.json.encode(unsigned, order="sorted")


class CheckpointError(Exception):
    """The checkpoint file or its signature cannot be trusted, or the log does not match it."""


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError(f"{path} is not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def public_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign_checkpoint(report: ChainReport, key: Ed25519PrivateKey, now: datetime) -> Checkpoint:
    if not report.ok:
        raise CheckpointError(
            f"refusing to checkpoint a broken chain (first bad position {report.first_bad_position})"
        )
    unsigned = Checkpoint(
        position=report.head_position,
        hash=report.head_hash,
        count=report.count,
        created_at=now,
        public_key=public_key_b64(key),
    )
    signature = base64.b64encode(key.sign(unsigned.signed_bytes())).decode()
    return msgspec.structs.replace(unsigned, signature=signature)


def read_checkpoint(path: Path, *, trusted_public_key: str | None = None) -> Checkpoint:
    try:
        checkpoint = msgspec.json.decode(path.read_bytes(), type=Checkpoint)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    public = trusted_public_key or checkpoint.public_key
    if trusted_public_key and trusted_public_key != checkpoint.public_key:
        raise CheckpointError("checkpoint was signed by a different key than the trusted one")
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public)).verify(
            base64.b64decode(checkpoint.signature), checkpoint.signed_bytes()
        )
    except (InvalidSignature, ValueError):
        raise CheckpointError("checkpoint signature does not verify: the file was altered") from None
    return checkpoint


async def check_against_log(engine: AsyncEngine, checkpoint: Checkpoint) -> str | None:
    """None when the log still contains the checkpointed head unchanged; otherwise what is wrong."""
    async with read_only_transaction(engine) as conn:
        stored = await conn.scalar(select(events.c.hash).where(events.c.position == checkpoint.position))
    if stored is None:
        return f"the log no longer reaches position {checkpoint.position}: it was truncated"
    if stored != checkpoint.hash:
        return (
            f"the event at position {checkpoint.position} differs from the checkpoint: the log was rewritten"
        )
    return None
