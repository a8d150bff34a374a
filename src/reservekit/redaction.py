"""Key-shaped text never reaches storage: the one rule every write path applies.

A secret pasted into a free-text field (a leak report's ``source``, a revocation ``reason``, a key
``name``, a service ``description``, a ``User-Agent`` or ``X-Request-Id``) would otherwise be kept in
the append-only log, where it can never be purged. Anything that starts like a key and carries at
least 8 base62 characters is replaced by ``sk_rsv_[REDACTED]``: full keys, and truncated or mistyped
ones too. The 4-character display hint (``prefix``, e.g. ``sk_rsv_AbC1``) stays, since it is not
secret. A webhook signing secret (``whsec_`` + base64) pasted into such a field is replaced by
``whsec_[REDACTED]`` under the same rule. Log lines use the stricter rule in ``logging.py`` (any length).
"""

from __future__ import annotations

import re

KEY_MARK = "sk_rsv_"
WEBHOOK_SECRET_MARK = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
REDACTED_KEY = "sk_rsv_[REDACTED]"
REDACTED_WEBHOOK_SECRET = "whsec_[REDACTED]"  # noqa: S105 - the replacement text, not a secret
MIN_SECRET_CHARS = 8
_PATTERN = rf"sk_rsv_[0-9A-Za-z]{{{MIN_SECRET_CHARS},}}|whsec_[0-9A-Za-z+/=]{{{MIN_SECRET_CHARS},}}"
_KEY_SHAPED = re.compile(_PATTERN)
_KEY_SHAPED_BYTES = re.compile(_PATTERN.encode())


def _replacement(match: re.Match[str]) -> str:
    return REDACTED_KEY if match.group().startswith(KEY_MARK) else REDACTED_WEBHOOK_SECRET


def _replacement_bytes(match: re.Match[bytes]) -> bytes:
    return (REDACTED_KEY if match.group().startswith(KEY_MARK.encode()) else REDACTED_WEBHOOK_SECRET).encode()


def redact(text: str) -> str:
    """``text`` with every key-shaped run replaced; the very same object when there is none."""
    if (KEY_MARK not in text and WEBHOOK_SECRET_MARK not in text) or not _KEY_SHAPED.search(text):
        return text
    return _KEY_SHAPED.sub(_replacement, text)


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)


def redact_json(raw: bytes) -> bytes:
    """Redact encoded JSON in place of its strings: key characters are never escaped by the encoder,
    and the replacement holds no character that needs escaping, so the result is still valid JSON.
    The very same object when there is nothing to redact."""
    marked = KEY_MARK.encode() in raw or WEBHOOK_SECRET_MARK.encode() in raw
    if not marked or not _KEY_SHAPED_BYTES.search(raw):
        return raw
    return _KEY_SHAPED_BYTES.sub(_replacement_bytes, raw)
