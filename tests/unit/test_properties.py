"""Property tests (hypothesis): key parsing, domain matching, cursor codecs and the GCRA.

Each property holds for every input hypothesis can find, not only for the examples in the other
unit tests; a failure prints the smallest input that breaks it.
"""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from reservekit.clock import from_micros, to_micros
from reservekit.domain.domains import host_matches, normalise_domain, origin_host
from reservekit.domain.errors import DomainError
from reservekit.keys.tokens import BASE62_ALPHABET, SECRET_PREFIX, generate_secret, is_well_formed
from reservekit.ratelimit.gcra import gcra_step_us
from reservekit.redaction import REDACTED_KEY, redact
from reservekit.web.pagination import encode_cursor, flag_after, id_after, position_after

secrets_ = st.builds(lambda _: generate_secret(), st.integers())
labels = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z")
hosts = st.lists(labels, min_size=1, max_size=4).map(".".join)


# Key parsing ---------------------------------------------------------------------------------------


@given(secrets_)
def test_every_generated_key_is_well_formed_and_redacted(secret: str) -> None:
    assert is_well_formed(secret)
    assert redact(f"see {secret} here") == f"see {REDACTED_KEY} here"


@given(secrets_, st.data())
def test_any_one_character_changed_is_malformed(secret: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(len(SECRET_PREFIX), len(secret) - 1))
    replacement = data.draw(st.sampled_from(BASE62_ALPHABET).filter(lambda c: c != secret[position]))
    assert not is_well_formed(secret[:position] + replacement + secret[position + 1 :])


@given(secrets_, st.integers(0, 44))
def test_a_truncated_or_extended_key_is_malformed(secret: str, cut: int) -> None:
    assume(cut != len(secret))
    assert not is_well_formed(secret[:cut])
    assert not is_well_formed(secret + "A")


@given(st.text())
def test_key_parsing_never_raises(text: str) -> None:
    assert is_well_formed(text) in (True, False)
    assert is_well_formed(SECRET_PREFIX + text) in (True, False)


# Domain matching -----------------------------------------------------------------------------------


@given(hosts)
def test_an_exact_domain_matches_itself_only(host: str) -> None:
    domain = normalise_domain(host.upper() + ".")
    assert domain == host
    assert host_matches(host, [domain])
    assert not host_matches("x" + host, [domain])
    assert not host_matches("a." + host, [domain])


@given(labels, st.lists(labels, min_size=2, max_size=3).map(".".join))
def test_a_wildcard_matches_subdomains_never_the_apex_or_a_lookalike(sub: str, base: str) -> None:
    wildcard = normalise_domain(f"*.{base}")
    assert host_matches(f"{sub}.{base}", [wildcard])
    assert host_matches(f"a.{sub}.{base}", [wildcard])
    assert not host_matches(base, [wildcard])
    assert not host_matches(f"{sub}{base}", [wildcard])


@given(hosts)
def test_normalising_is_idempotent(host: str) -> None:
    once = normalise_domain(host)
    assert normalise_domain(once) == once


@given(st.text(max_size=60))
def test_normalising_any_text_either_works_or_is_invalid_input(text: str) -> None:
    try:
        normalise_domain(text)
    except DomainError as exc:
        assert exc.field == "domains"  # noqa: PT017 (hypothesis: either outcome is fine)


@given(st.one_of(st.none(), st.text(max_size=80)), st.one_of(st.none(), st.text(max_size=80)))
def test_origin_host_never_raises(origin: str | None, referer: str | None) -> None:
    host = origin_host(origin, referer)
    assert host is None or host == host.lower()


@given(hosts)
def test_origin_host_of_an_origin_matches_its_domain(host: str) -> None:
    assert host_matches(origin_host(f"https://{host.upper()}:8443", None), [normalise_domain(host)])


# Cursor codecs -------------------------------------------------------------------------------------


@given(st.integers(0, 2**63 - 1), st.text(string.ascii_letters + string.digits, min_size=1, max_size=30))
def test_cursors_round_trip(position: int, suffix: str) -> None:
    flag = (position, f"flg_{suffix}")
    assert flag_after(encode_cursor("flags", flag)) == flag
    assert position_after("audit_events", encode_cursor("audit_events", position)) == position
    assert id_after("api_keys", encode_cursor("api_keys", f"key_{suffix}")) == f"key_{suffix}"


@given(st.integers(0, 2**63 - 1))
def test_a_cursor_of_one_listing_is_refused_on_another(position: int) -> None:
    with pytest.raises(DomainError) as refused:
        position_after("audit_usage", encode_cursor("audit_events", position))
    assert refused.value.field == "cursor"


@given(st.text(max_size=60))
def test_any_cursor_text_is_decoded_or_refused_as_bad_input(text: str) -> None:
    for decode in (flag_after, lambda c: id_after("services", c), lambda c: position_after("deliveries", c)):
        try:
            value = decode(text)
        except DomainError as exc:
            assert exc.field == "cursor"  # noqa: PT017 (hypothesis: either outcome is fine)
        else:
            assert value is not None  # only a cursor this API made decodes
            assert "\x00" not in str(value)


# GCRA ----------------------------------------------------------------------------------------------

limits = st.integers(1, 200)
intervals = st.integers(1, 10_000_000)
nows = st.integers(0, 2**52)


@settings(max_examples=200)
@given(limits, intervals, nows)
def test_a_full_bucket_allows_exactly_limit_at_once(limit: int, interval: int, now: int) -> None:
    tat = None
    for expected_remaining in range(limit - 1, -1, -1):
        tat, decision = gcra_step_us(tat, now, limit, interval)
        assert decision.allowed
        assert decision.remaining == expected_remaining
    refused_tat, refused = gcra_step_us(tat, now, limit, interval)
    assert refused_tat is None
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.retry_after > 0


@settings(max_examples=200)
@given(limits, intervals, nows, st.integers(1, 50))
def test_waiting_retry_after_is_enough_and_a_refusal_changes_nothing(
    limit: int, interval: int, now: int, extra: int
) -> None:
    tat = None
    for _ in range(limit + extra):
        new_tat, decision = gcra_step_us(tat, now, limit, interval)
        if not decision.allowed:
            assert new_tat is None  # the caller keeps the old TAT
            later = now + round(decision.retry_after * 1_000_000)
            assert gcra_step_us(tat, later, limit, interval)[1].allowed
            assert not gcra_step_us(tat, later - 2, limit, interval)[1].allowed
            break
        tat = new_tat


@settings(max_examples=200)
@given(limits, intervals, nows, st.lists(st.integers(0, 5_000_000), max_size=60))
def test_never_more_than_limit_plus_refill_in_any_run(
    limit: int, interval: int, start: int, gaps: list[int]
) -> None:
    tat, now, allowed = None, start, 0
    for gap in gaps:
        now += gap
        new_tat, decision = gcra_step_us(tat, now, limit, interval)
        if decision.allowed:
            allowed += 1
            tat = new_tat
        assert 0 <= decision.remaining <= limit - (1 if decision.allowed else 0)
    assert allowed <= limit + (now - start) // interval


@pytest.mark.parametrize(
    "value",
    [
        [2**63, "flg_x"],
        [-1, "flg_x"],
        [1, "key_x"],
        [1, "flg_x\x00"],
        1,
        "flg_x",
        [1.5, "flg_x"],
        [True, "flg_x"],
    ],
)
def test_bad_flag_cursors_found_by_the_properties(value: object) -> None:
    """Well encoded, but not a flag position this API could have made (past 64 bits, another id, NUL)."""
    with pytest.raises(DomainError):
        flag_after(encode_cursor("flags", value))  # type: ignore[arg-type]


def test_a_webhook_secret_pasted_into_free_text_is_redacted_but_its_name_is_not() -> None:
    from reservekit.redaction import REDACTED_WEBHOOK_SECRET, redact_json
    from reservekit.webhooks.secrets import generate_signing_secret

    secret = generate_signing_secret()
    assert redact(f"pasted {secret} by mistake") == f"pasted {REDACTED_WEBHOOK_SECRET} by mistake"
    assert redact("rotate the whsec_ prefix") == "rotate the whsec_ prefix"
    encoded = json.dumps({"reason": f"leaked {secret}"}).encode()
    assert json.loads(redact_json(encoded)) == {"reason": f"leaked {REDACTED_WEBHOOK_SECRET}"}


# Stored instants -----------------------------------------------------------------------------------


# Fixed offsets, as RFC 3339 texts carry (a named zone's DST gap has local times that never happened).
offsets = st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59))


@given(
    st.datetimes(
        timezones=offsets.map(lambda offset: timezone(offset - timedelta(microseconds=offset.microseconds)))
    )
)
def test_an_instant_survives_its_integer_storage_exactly(moment: datetime) -> None:
    """Events are hashed over these integers: a microsecond lost or gained would break the chain."""
    try:
        stored = to_micros(moment)
    except OverflowError:  # an offset that takes it past year 1 or 9999 in UTC
        assume(False)
    assert from_micros(stored) == moment
    assert from_micros(stored).tzinfo is UTC
    assert to_micros(from_micros(stored)) == stored


@given(st.integers(min_value=-62_135_596_800_000_000, max_value=253_402_300_799_999_999))
def test_every_stored_integer_reads_back_as_that_many_microseconds_from_the_epoch(micros: int) -> None:
    assert from_micros(micros) - datetime(1970, 1, 1, tzinfo=UTC) == timedelta(microseconds=micros)
