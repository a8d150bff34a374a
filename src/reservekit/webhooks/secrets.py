"""Webhook signing secrets: generated here, shown once, kept encrypted at rest to sign later.

Unlike API keys (where a hash suffices to check), a signing secret must be recoverable to sign every
delivery, so it cannot be hashed. It must not enter the event log either: the log is append-only and
kept forever, and a secret written there could never be rolled away. So the plaintext lives only in
``webhook_secrets``, encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from the configured
key pepper; the endpoint id and secret version are the associated data, so a ciphertext copied onto
another endpoint's row does not decrypt. Losing the pepper loses the secrets (roll them); a stolen
database without the pepper reveals none.
"""

from __future__ import annotations

import base64
import os
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from reservekit.webhooks.tables import webhook_secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 32
_NONCE_BYTES = 12
_HKDF_INFO = b"reservekit webhook signing secrets v1"


def generate_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class SecretBox:
    """AES-GCM with a key derived from the pepper; repr never shows it."""

    __slots__ = ("_aead",)

    def __init__(self, pepper: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(pepper)
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(key=[REDACTED])"

    def seal(self, plaintext: str, *, endpoint_id: str, version: int) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), _aad(endpoint_id, version))
        return base64.b64encode(nonce + sealed).decode()

    def open(self, ciphertext: str, *, endpoint_id: str, version: int) -> str:
        raw = base64.b64decode(ciphertext)
        return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(endpoint_id, version)).decode()


def _aad(endpoint_id: str, version: int) -> bytes:
    return f"{endpoint_id}:{version}".encode()


async def store_secret(
    conn: AsyncConnection,
    box: SecretBox,
    *,
    endpoint_id: str,
    account_id: str,
    version: int,
    secret: str,
    created_at_us: int,
) -> None:
    await conn.execute(
        insert(webhook_secrets).values(
            endpoint_id=endpoint_id,
            version=version,
            account_id=account_id,
            ciphertext=box.seal(secret, endpoint_id=endpoint_id, version=version),
            created_at_us=created_at_us,
        )
    )


async def load_secret(conn: AsyncConnection, box: SecretBox, *, endpoint_id: str, version: int) -> str | None:
    ciphertext = await conn.scalar(
        select(webhook_secrets.c.ciphertext).where(
            webhook_secrets.c.endpoint_id == endpoint_id, webhook_secrets.c.version == version
        )
    )
    if ciphertext is None:
        return None
    return box.open(str(ciphertext), endpoint_id=endpoint_id, version=version)
