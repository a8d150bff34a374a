"""Tests written for mutants that survived the first mutation run (docs/security.md lists the ones
left as equivalent). Each pins a boundary, a default, a message or a field the other tests let slip."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from structlog.testing import capture_logs

from reservekit.domain.accounts import fold_account, validate_name
from reservekit.domain.domains import host_matches, normalise_domain
from reservekit.domain.errors import DomainError, InvalidInput, NotPermitted
from reservekit.domain.events import (
    AccountOpened,
    KeyCreated,
    KeyRevoked,
    Metadata,
    decode_event,
    decode_metadata,
    encode_event,
    encode_metadata,
    event_type,
)
from reservekit.domain.keys import decide_create_key, fold_key
from reservekit.domain.scopes import resolve_scopes
from reservekit.ratelimit import InMemoryRateLimiter, RateLimiterUnavailable
from reservekit.ratelimit.breaker import CircuitBreakerLimiter
from reservekit.ratelimit.gcra import emission_interval_us, gcra_step, gcra_step_us
from tests.unit._domain_builders import MATERIAL, NOW, account, recorded
from tests.unit.test_circuit_breaker import HungLimiter


def test_a_single_opened_event_gives_the_account() -> None:
    state = fold_account([recorded(AccountOpened(account_id="a", name="A", plan="free"), 1)])
    assert state is not None
    assert (state.plan, state.version, state.operator) == ("free", 1, False)


def test_a_single_created_event_gives_the_key() -> None:
    expires = NOW + timedelta(days=1)
    created = KeyCreated(key_id="k", account_id="a", key_hash="h", prefix="p", last4="l", expires_at=expires)
    state = fold_key([recorded(created, 1, position=3)])
    assert state is not None
    assert (state.expires_at, state.version, state.position) == (expires, 1, 3)


def test_an_expiry_outside_the_calendar_is_invalid_input_naming_the_field() -> None:
    far = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14)))
    with pytest.raises(InvalidInput) as info:
        decide_create_key(account(), MATERIAL, name=None, domains=None, scopes=None, expires_at=far, now=NOW)
    assert info.value.field == "expires_at"
    assert info.value.message == "expires_at is outside the years 1 to 9999 once converted to UTC"


def test_only_an_operator_account_can_create_a_platform_admin_key() -> None:
    (event,) = decide_create_key(
        account(operator=True), MATERIAL, name=None, domains=None, scopes=["platform:admin"],
        expires_at=None, now=NOW,
    )  # fmt: skip
    assert isinstance(event, KeyCreated)
    assert event.scopes == ("platform:admin",)
    with pytest.raises(InvalidInput) as info:
        decide_create_key(
            account(), MATERIAL, name=None, domains=None, scopes=["platform:admin"], expires_at=None, now=NOW
        )
    assert info.value.field == "scopes"
    with pytest.raises(InvalidInput) as direct:
        resolve_scopes(["platform:admin"], operator=False)
    assert direct.value.field == "scopes"


def test_explicit_scopes_beyond_what_the_caller_holds_are_forbidden() -> None:
    with pytest.raises(NotPermitted):
        decide_create_key(
            account(), MATERIAL, name=None, domains=None, scopes=["audit:read"], expires_at=None, now=NOW,
            grantable=frozenset({"keys:read"}),
        )  # fmt: skip


def test_a_domain_error_reads_as_its_message() -> None:
    assert str(InvalidInput("the message", field="f")) == "the message"
    assert DomainError("x").field is None


def test_the_default_field_of_a_name_is_name() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_name(None)
    assert (info.value.field, info.value.message) == ("name", "name is required")


@pytest.mark.parametrize("raw", ["a.com/x", "https://a.com", "a.com:443"])
def test_a_url_is_refused_as_a_url(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        normalise_domain(raw)
    assert info.value.message == f"domain {raw!r} must be a host name, without scheme, port or path"
    assert info.value.field == "domains"


def test_an_invalid_host_is_refused_as_such() -> None:
    with pytest.raises(InvalidInput) as info:
        normalise_domain("a..com")
    assert info.value.message == "domain 'a..com' is not a valid host name or *.wildcard"


def test_253_characters_is_the_longest_host_name() -> None:
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(longest) == 253
    assert normalise_domain(longest) == longest
    with pytest.raises(InvalidInput):
        normalise_domain(longest + "e")


def test_a_wildcard_needs_a_label_in_front() -> None:
    assert not host_matches(".example.com", ["*.example.com"])
    assert host_matches("a.example.com", ["*.example.com"])


def test_events_and_metadata_encode_and_decode() -> None:
    event = KeyRevoked(key_id="k", account_id="a", reason="r")
    raw = encode_event(event)
    assert raw == b'{"type":"key_revoked","key_id":"k","account_id":"a","reason":"r"}'
    assert decode_event(raw) == event
    assert event_type(event) == "key_revoked"
    metadata = Metadata(request_id="req_1", source="cli")
    assert decode_metadata(encode_metadata(metadata)) == metadata
    assert encode_metadata(metadata) == b'{"request_id":"req_1","source":"cli"}'


# Rate limiting -------------------------------------------------------------------------------------


def test_the_shortest_period_and_cost_in_intervals() -> None:
    assert emission_interval_us(1, 0.000001) == 1
    assert emission_interval_us(1, 60) == 60_000_000  # cost 1 by default, which a limit of 1 allows
    assert emission_interval_us(10, 1, 2) == 100_000


def test_a_refusal_counts_whole_requests_left() -> None:
    # burst 20, TAT 15 µs ahead: half a request's room is not a request.
    _, refused = gcra_step_us(115, 100, 2, 10)
    assert not refused.allowed
    assert refused.remaining == 0
    assert isinstance(refused.remaining, int)


def test_cost_is_passed_through_every_layer() -> None:
    _, decision = gcra_step(None, 0.0, 10, 60, cost=3)
    assert decision.remaining == 7


async def test_in_memory_cost_and_smallest_size() -> None:
    limiter = InMemoryRateLimiter(max_buckets=1)
    assert (await limiter.hit("a", limit=10, period=60, now=0, cost=3)).remaining == 7
    assert (await limiter.peek("a", limit=10, period=60, now=0, cost=2)).remaining == 5
    with pytest.raises(ValueError, match=r"^max_buckets must be at least 1, got 0$"):
        InMemoryRateLimiter(max_buckets=0)


async def test_the_breaker_passes_cost_and_has_its_defaults() -> None:
    breaker = CircuitBreakerLimiter(HungLimiter(timeout=0.0))
    assert breaker._probe_interval == 1.0
    assert (await breaker.hit("a", limit=10, period=60, now=0, cost=3)).remaining == 7
    assert (await breaker.peek("a", limit=10, period=60, now=0, cost=2)).remaining == 5
    with pytest.raises(ValueError, match=r"^failure_threshold must be at least 1$"):
        CircuitBreakerLimiter(HungLimiter(), failure_threshold=0)


async def test_the_probe_task_is_named_logged_cancelled_and_counted() -> None:
    inner = HungLimiter(timeout=0.0)
    breaker = CircuitBreakerLimiter(inner, failure_threshold=2, probe_interval=0.01)
    inner.hung = True
    with capture_logs() as logs:
        for _ in range(2):
            with pytest.raises(RateLimiterUnavailable):
                await breaker.hit("a", limit=10, period=60, now=0)
    assert logs[0]["probe_every"] == 0.01
    task = breaker._probe_task
    assert task is not None
    assert task.get_name() == "reservekit-redis-probe"
    await asyncio.sleep(0.05)
    assert breaker.is_open  # failed probes keep it open
    await breaker.close()
    assert task.cancelled()
    # Closed by the probe, it counts failures from zero again: one failure does not reopen it.
    inner.hung = False
    await breaker.hit("a", limit=10, period=60, now=0)
    inner.hung = True
    for _ in range(2):
        with pytest.raises(RateLimiterUnavailable):
            await breaker.hit("a", limit=10, period=60, now=0)
    assert breaker.opened_count == 2
    inner.hung = False
    for _ in range(100):
        await asyncio.sleep(0.01)
        if not breaker.is_open:
            break
    inner.hung = True
    with pytest.raises(RateLimiterUnavailable):
        await breaker.hit("a", limit=10, period=60, now=0)
    assert not breaker.is_open
    await breaker.close()


async def test_a_cost_above_the_limit_is_a_caller_error_at_every_layer() -> None:
    with pytest.raises(ValueError, match="cost must be between 1 and limit"):
        gcra_step(None, 0.0, 2, 60, cost=3)
    with pytest.raises(ValueError, match="cost must be between 1 and limit"):
        await InMemoryRateLimiter().hit("a", limit=2, period=60, now=0, cost=3)


async def test_an_open_circuit_says_so() -> None:
    inner = HungLimiter(timeout=0.0)
    breaker = CircuitBreakerLimiter(inner, failure_threshold=1, probe_interval=10)
    inner.hung = True
    with pytest.raises(RateLimiterUnavailable):
        await breaker.hit("a", limit=10, period=60, now=0)
    with pytest.raises(
        RateLimiterUnavailable, match=r"^rate limiter store unavailable: circuit open, probing in background$"
    ):
        await breaker.hit("a", limit=10, period=60, now=0)
    await breaker.close()
