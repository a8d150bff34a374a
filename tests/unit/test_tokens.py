"""Key format, checksum, hashing and pepper handling (SPEC §2)."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import string
import zlib
from pathlib import Path

import pytest

from reservekit.keys.tokens import (
    SECRET_LENGTH,
    SECRET_PREFIX,
    KeyHasher,
    display_prefix,
    generate_secret,
    is_well_formed,
    last4,
    load_or_create_pepper,
    parse_pepper,
)

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
FIXED_RANDOM = "0123456789abcdefABCDEFghijklmnop"


def reference_checksum(random_part: str) -> str:
    """Independent base62 encoding of CRC32, written the slow obvious way."""
    value = zlib.crc32(random_part.encode())
    digits = ""
    while value:
        value, rem = divmod(value, 62)
        digits = ALPHABET[rem] + digits
    return digits.rjust(6, "0")


def replace_char(token: str, index: int) -> str:
    new = "A" if token[index] != "A" else "B"
    return token[:index] + new + token[index + 1 :]


def test_generated_secrets_are_well_formed_unique_and_sized() -> None:
    secrets = [generate_secret() for _ in range(500)]
    assert len(set(secrets)) == len(secrets)
    for secret in secrets:
        assert len(secret) == SECRET_LENGTH == 45
        assert secret.startswith(SECRET_PREFIX)
        assert set(secret[7:]) <= set(ALPHABET)
        assert secret[-6:] == reference_checksum(secret[7:39])
        assert is_well_formed(secret)


def test_checksum_matches_independent_computation() -> None:
    token = SECRET_PREFIX + FIXED_RANDOM + reference_checksum(FIXED_RANDOM)
    assert is_well_formed(token)
    # Pinned values: catch a change of alphabet order or padding made on both sides at once.
    assert zlib.crc32(FIXED_RANDOM.encode()) == 4109018959
    assert reference_checksum(FIXED_RANDOM) == "4U51XL"
    assert is_well_formed(SECRET_PREFIX + FIXED_RANDOM + "4U51XL")
    assert is_well_formed(SECRET_PREFIX + "0" * 32 + "2wjyrI")
    padded = "0" * 30 + "1F"  # CRC32 9402264 < 62**4: checksum is left-padded with '0'
    assert zlib.crc32(padded.encode()) == 9402264
    assert reference_checksum(padded) == "00dRxQ"
    assert is_well_formed(SECRET_PREFIX + padded + "00dRxQ")
    assert not is_well_formed(SECRET_PREFIX + padded + "dRxQ00")


@pytest.mark.parametrize("index", range(7, 45))
def test_any_single_changed_char_after_prefix_is_rejected(index: int) -> None:
    token = SECRET_PREFIX + FIXED_RANDOM + reference_checksum(FIXED_RANDOM)
    assert not is_well_formed(replace_char(token, index))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "sk_rsv_",
        "sk_live_" + "a" * 37,
        "SK_RSV_" + FIXED_RANDOM + reference_checksum(FIXED_RANDOM),
        "pk_rsv_" + FIXED_RANDOM + reference_checksum(FIXED_RANDOM),
        SECRET_PREFIX + FIXED_RANDOM + reference_checksum(FIXED_RANDOM) + "0",
        SECRET_PREFIX + FIXED_RANDOM + reference_checksum(FIXED_RANDOM)[:-1],
        SECRET_PREFIX + FIXED_RANDOM[:-1] + "-" + reference_checksum(FIXED_RANDOM),
        SECRET_PREFIX + FIXED_RANDOM[:-1] + "é" + reference_checksum(FIXED_RANDOM),
        SECRET_PREFIX + FIXED_RANDOM[:-1] + "٣" + reference_checksum(FIXED_RANDOM),  # Unicode digit
        SECRET_PREFIX + FIXED_RANDOM[:-1] + "\ud800" + reference_checksum(FIXED_RANDOM),
        " " + SECRET_PREFIX + FIXED_RANDOM + reference_checksum(FIXED_RANDOM)[:-1],
        SECRET_PREFIX + FIXED_RANDOM[:-1] + " " + reference_checksum(FIXED_RANDOM),
        SECRET_PREFIX + FIXED_RANDOM + reference_checksum(FIXED_RANDOM)[:-1] + "\n",
        "sk_rsv_" + "0" * 38,
    ],
)
def test_malformed_tokens_are_rejected(bad: str) -> None:
    assert is_well_formed(bad) is False


def test_non_string_input_is_rejected_not_raised() -> None:
    assert is_well_formed(None) is False  # type: ignore[arg-type]
    assert is_well_formed(b"sk_rsv_" + b"0" * 38) is False  # type: ignore[arg-type]


def test_display_prefix_and_last4() -> None:
    secret = generate_secret()
    assert display_prefix(secret) == SECRET_PREFIX + secret[7:11]
    assert last4(secret) == secret[-4:]
    with pytest.raises(ValueError, match="well-formed") as excinfo:
        display_prefix(replace_char(secret, 10))
    assert secret[7:] not in str(excinfo.value)


def test_hasher_is_deterministic_hmac_sha256_and_depends_on_pepper() -> None:
    pepper, other = b"p" * 32, b"q" * 32
    secret = generate_secret()
    hasher = KeyHasher(pepper)
    expected = hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()
    assert hasher.digest(secret) == hasher.digest(secret) == expected
    assert KeyHasher(other).digest(secret) != expected
    assert hasher.digest(generate_secret()) != expected
    assert "p" * 32 not in repr(hasher)


def test_hasher_rejects_short_pepper() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        KeyHasher(b"x" * 31)


def test_pepper_file_created_private_and_reread(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    first = load_or_create_pepper(data_dir)
    path = data_dir / "pepper"
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_pepper(data_dir) == first
    assert bytes.fromhex(path.read_text().strip()) == first
    assert [p.name for p in data_dir.iterdir()] == ["pepper"]  # no temp file left behind


def test_pepper_file_written_by_someone_else_wins(tmp_path: Path) -> None:
    pepper = os.urandom(48)
    (tmp_path / "pepper").write_text(pepper.hex())
    assert load_or_create_pepper(tmp_path) == pepper


def test_corrupt_pepper_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text("not hex")
    with pytest.raises(ValueError, match="pepper"):
        load_or_create_pepper(tmp_path)


def test_parse_pepper_accepts_hex_and_long_strings() -> None:
    raw = os.urandom(32)
    assert parse_pepper(raw.hex()) == raw
    assert parse_pepper(raw.hex().upper() + "\n") == raw
    phrase = "correct horse battery staple, really"
    assert parse_pepper(phrase) == phrase.encode()
    assert parse_pepper("z" * 64) == b"z" * 64  # not hex: taken as text


@pytest.mark.parametrize("bad", ["", "Tr0ub4dor&3", "ab" * 15, " " * 40])
def test_parse_pepper_rejects_short_values_without_echoing_them(bad: str) -> None:
    with pytest.raises(ValueError, match="RESERVEKIT_KEY_PEPPER") as excinfo:
        parse_pepper(bad)
    if bad.strip():
        assert bad not in str(excinfo.value)
