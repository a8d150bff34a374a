"""Key-shaped text never reaches storage: the one rule every write path applies.

A secret pasted into a free-text field (a leak report's ``source``, a revocation ``reason``, a key
``name``, a service ``description``, a ``User-Agent`` or ``X-Request-Id``) would otherwise be kept in
the append-only log, where it can never be purged. Anything that starts like a key and carries at
least 8 base62 characters is replaced by ``sk_rsv_[REDACTED]``: full keys, and truncated or mistyped
ones too. The 4-character display hint (``prefix``, e.g. ``sk_rsv_AbC1``) stays, since it is not
secret. Log lines use the stricter rule in ``logging.py`` (any length).
"""

from __future__ import annotations

import re

KEY_MARK = "sk_rsv_"
REDACTED_KEY = "sk_rsv_[REDACTED]"
MIN_SECRET_CHARS = 8
_KEY_SHAPED = re.compile(rf"sk_rsv_[0-9A-Za-z]{{{MIN_SECRET_CHARS},}}")
_KEY_SHAPED_BYTES = re.compile(rf"sk_rsv_[0-9A-Za-z]{{{MIN_SECRET_CHARS},}}".encode())


def redact(text: str) -> str:
    """``text`` with every key-shaped run replaced; the very same object when there is none."""
    if KEY_MARK not in text or not _KEY_SHAPED.search(text):
        return text
    return _KEY_SHAPED.sub(REDACTED_KEY, text)


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)


def redact_json(raw: bytes) -> bytes:
    """Redact encoded JSON in place of its strings: key characters are never escaped by the encoder,
    and the replacement holds no character that needs escaping, so the result is still valid JSON.
    The very same object when there is nothing to redact."""
    if KEY_MARK.encode() not in raw or not _KEY_SHAPED_BYTES.search(raw):
        return raw
    return _KEY_SHAPED_BYTES.sub(REDACTED_KEY.encode(), raw)
