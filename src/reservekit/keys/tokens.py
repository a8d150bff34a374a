"""Secret API keys: format, cheap well-formedness check, peppered hashing (SPEC §2).

A key is ``sk_rsv_`` + 32 base62 random characters + 6 base62 characters of CRC32 checksum of the
random part. The checksum lets every request reject typos and junk without touching the database;
only ``HMAC-SHA256(pepper, key)`` is ever stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import zlib
from pathlib import Path

SECRET_PREFIX = "sk_rsv_"  # noqa: S105 -- a public prefix, not a credential
SECRET_LENGTH = 45
BASE62_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
MIN_PEPPER_BYTES = 32
PEPPER_FILE_NAME = "pepper"

_PREFIX_LENGTH = len(SECRET_PREFIX)
_CHECKSUM_START = _PREFIX_LENGTH + RANDOM_LENGTH
assert _CHECKSUM_START + CHECKSUM_LENGTH == SECRET_LENGTH


# Every 2-char base62 pair, indexed by value: the checksum is three table lookups, not a digit loop.
_PAIRS = tuple(a + b for a in BASE62_ALPHABET for b in BASE62_ALPHABET)


def _checksum(random_part: str) -> str:
    """Base62 CRC32 of the random part, zero-padded to 6 chars (62**6 > 2**32, so it always fits)."""
    value = zlib.crc32(random_part.encode("ascii"))
    return _PAIRS[value // 62**4] + _PAIRS[value // 62**2 % 3844] + _PAIRS[value % 3844]


def generate_secret() -> str:
    """A fresh key: 32 base62 chars from ``secrets`` (~190 bits) plus its checksum."""
    random_part = "".join(secrets.choice(BASE62_ALPHABET) for _ in range(RANDOM_LENGTH))
    return SECRET_PREFIX + random_part + _checksum(random_part)


def is_well_formed(token: str) -> bool:
    """True if prefix, length, alphabet and checksum are right; runs on every request, so no regex.

    ``isascii()`` + ``isalnum()`` together are exactly ``[0-9A-Za-z]``; any non-str or non-ASCII
    input is simply rejected, never raised on.
    """
    if not isinstance(token, str) or len(token) != SECRET_LENGTH or not token.startswith(SECRET_PREFIX):
        return False
    body = token[_PREFIX_LENGTH:]
    if not (body.isascii() and body.isalnum()):
        return False
    return token[_CHECKSUM_START:] == _checksum(token[_PREFIX_LENGTH:_CHECKSUM_START])


def _require_well_formed(secret: str) -> None:
    if not is_well_formed(secret):
        # Never echo the value: it may be a real key.
        raise ValueError("not a well-formed sk_rsv_ secret key")


def display_prefix(secret: str) -> str:
    """Public hint ``sk_rsv_`` + first 4 random chars, so users can recognise a key without the secret."""
    _require_well_formed(secret)
    return secret[: _PREFIX_LENGTH + 4]


def last4(secret: str) -> str:
    """Last 4 chars of the whole key (part of the checksum), the second public hint."""
    _require_well_formed(secret)
    return secret[-4:]


class KeyHasher:
    """HMAC-SHA256 with a server-side pepper: a stolen table of digests cannot be brute-forced offline."""

    __slots__ = ("_keyed",)

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < MIN_PEPPER_BYTES:
            raise ValueError(f"key pepper must be at least {MIN_PEPPER_BYTES} bytes, got {len(pepper)}")
        # Pre-keyed once; copy() skips re-deriving the padded key on every request.
        self._keyed = hmac.new(pepper, digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "KeyHasher(pepper=[REDACTED])"

    def digest(self, secret: str) -> str:
        """Hex digest stored and looked up instead of the key itself."""
        mac = self._keyed.copy()
        # surrogatepass: arbitrary request input must hash, not raise.
        mac.update(secret.encode("utf-8", "surrogatepass"))
        return mac.hexdigest()


def parse_pepper(value: str) -> bytes:
    """Pepper from ``RESERVEKIT_KEY_PEPPER``: hex of >= 32 bytes, else any >= 32-char string as UTF-8."""
    text = value.strip()
    if len(text) >= 2 * MIN_PEPPER_BYTES and len(text) % 2 == 0:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    if len(text) >= MIN_PEPPER_BYTES:
        return text.encode("utf-8")
    # The value itself is secret: describe it, never echo it.
    raise ValueError(
        f"RESERVEKIT_KEY_PEPPER: too short ({len(text)} characters); use at least "
        f"{MIN_PEPPER_BYTES} characters, or hex of at least {MIN_PEPPER_BYTES} random bytes "
        f"(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
    )


def _read_pepper(path: Path) -> bytes:
    try:
        pepper = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{path}: pepper file is not hex text; restore it from backup") from None
    if len(pepper) < MIN_PEPPER_BYTES:
        raise ValueError(f"{path}: pepper file holds {len(pepper)} bytes, need {MIN_PEPPER_BYTES}")
    return pepper


def load_or_create_pepper(data_dir: Path) -> bytes:
    """The embedded default's pepper: read ``data_dir/pepper``, generating it (mode 0600) on first run.

    The new pepper is written to a private temp file, then published with ``os.link``, which fails if
    the name exists: the final file never exists half-written or with looser permissions, and a
    process that loses the race reads the winner's pepper instead of replacing it.
    """
    path = data_dir / PEPPER_FILE_NAME
    if path.exists():
        return _read_pepper(path)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    content = secrets.token_hex(MIN_PEPPER_BYTES) + "\n"
    tmp = data_dir / f".{PEPPER_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        _write_exclusive(tmp, content)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race; its pepper is the one
        except OSError:  # filesystem without hard links: create the final name exclusively instead
            with contextlib.suppress(FileExistsError):
                _write_exclusive(path, content)
    finally:
        tmp.unlink(missing_ok=True)
    return _read_pepper(path)


def _write_exclusive(path: Path, content: str) -> None:
    """Create ``path`` (failing if it exists) already at mode 0600, and make it durable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
