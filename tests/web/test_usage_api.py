"""GET /v1/api-keys/{id}/usage over HTTP, and last_used_at in key objects, on both backends.

Usage is seeded with ``append_usage`` for a key that makes no requests itself, so the rows the auth
middleware records for the test's own calls (made with another key) never mix into the counts.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from reservekit.clock import FakeClock, to_micros
from reservekit.runtime import Runtime
from reservekit.usage.log import append_usage
from reservekit.usage.records import UsageRecord
from tests.web.conftest import Caller, Client, create_key, problem

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # the clock fixture's instant
_ids = itertools.count()


def row(key: Caller, at: datetime, outcome: str = "ok") -> UsageRecord:
    return UsageRecord(
        occurred_at_us=to_micros(at),
        request_id=f"req_seed_{next(_ids)}",
        key_id=key.key_id,
        account_id=key.account_id,
        client_ip="198.51.100.20",
        origin=None,
        method="GET",
        route="/v1/services",
        status=200 if outcome == "ok" else 401,
        outcome=outcome,
        detail=None,
        latency_us=250,
    )


async def seed(runtime: Runtime, rows: list[UsageRecord]) -> None:
    await append_usage(runtime.engine, rows, recorded_at_us=to_micros(runtime.clock.now()))
    await runtime.refresh_projections()


@pytest.fixture
async def seeded(client: Client, acme: Caller, runtime: Runtime) -> Caller:
    """Acme key used 8 times: 10:05 twice (one revoked), 10:59, 11:30 thrice, 16 h and 3 days ago."""
    key = await create_key(client, acme, name="seeded")
    at = NOW.replace(hour=10, minute=5)
    await seed(
        runtime,
        [
            row(key, at),
            row(key, at + timedelta(seconds=30), "revoked"),
            row(key, NOW.replace(hour=10, minute=59, second=59)),
            *[row(key, NOW.replace(hour=11, minute=30, second=s)) for s in (0, 1, 2)],
            row(key, NOW - timedelta(hours=16)),
            row(key, NOW - timedelta(days=3), "rate_limited"),
        ],
    )
    return key


async def usage(client: Client, caller: Caller, key_id: str, **params: str) -> dict:  # type: ignore[type-arg]
    response = await client.get(f"/v1/api-keys/{key_id}/usage", params=params, headers=caller.headers)
    assert response.status_code == 200, response.text
    body: dict = response.json()  # type: ignore[type-arg]
    return body


async def test_hour_buckets_over_the_default_last_24_hours(
    client: Client, acme: Caller, seeded: Caller
) -> None:
    body = await usage(client, acme, seeded.key_id)
    assert body["key_id"] == seeded.key_id
    assert body["bucket"] == "hour"
    assert (body["since"], body["until"]) == ("2026-05-31T12:00:00Z", "2026-06-01T12:00:00Z")
    assert body["data"] == [
        {"start": "2026-05-31T20:00:00Z", "counts": {"ok": 1}, "total": 1},
        {"start": "2026-06-01T10:00:00Z", "counts": {"ok": 2, "revoked": 1}, "total": 3},
        {"start": "2026-06-01T11:00:00Z", "counts": {"ok": 3}, "total": 3},
    ]
    assert body["totals"] == {"ok": 6, "revoked": 1}
    assert body["total"] == 7


async def test_minute_and_day_buckets_sum_the_same_rows(client: Client, acme: Caller, seeded: Caller) -> None:
    window = {"since": "2026-06-01T10:00:00Z", "until": "2026-06-01T12:00:00Z"}
    minutes = await usage(client, acme, seeded.key_id, bucket="minute", **window)
    assert [(b["start"], b["counts"]) for b in minutes["data"]] == [
        ("2026-06-01T10:05:00Z", {"ok": 1, "revoked": 1}),
        ("2026-06-01T10:59:00Z", {"ok": 1}),
        ("2026-06-01T11:30:00Z", {"ok": 3}),
    ]
    days = await usage(client, acme, seeded.key_id, bucket="day", since="2026-05-25T00:00:00Z")
    assert [(b["start"], b["total"]) for b in days["data"]] == [
        ("2026-05-29T00:00:00Z", 1),
        ("2026-05-31T00:00:00Z", 1),
        ("2026-06-01T00:00:00Z", 6),
    ]
    assert days["totals"] == {"ok": 6, "revoked": 1, "rate_limited": 1}
    assert minutes["totals"] == {"ok": 5, "revoked": 1}


async def test_since_and_until_filter_and_accept_any_offset(
    client: Client, acme: Caller, seeded: Caller
) -> None:
    # 12:00+02:00 is 10:00Z; until is exclusive at minute granularity, so 11:30 is out.
    body = await usage(
        client, acme, seeded.key_id, since="2026-06-01T12:00:00+02:00", until="2026-06-01T11:30:00Z"
    )
    assert body["since"] == "2026-06-01T10:00:00Z"
    assert body["totals"] == {"ok": 2, "revoked": 1}
    # An unencoded "+" arrives as a space; it still means the offset.
    raw = await client.get(
        f"/v1/api-keys/{seeded.key_id}/usage?since=2026-06-01T12:59:00+02:00&bucket=minute",
        headers=acme.headers,
    )
    assert raw.status_code == 200, raw.text
    assert raw.json()["totals"] == {"ok": 4}
    empty = await usage(client, acme, seeded.key_id, until="2026-05-01T00:00:00Z")
    assert (empty["data"], empty["totals"], empty["total"]) == ([], {}, 0)


async def test_another_accounts_key_is_a_404_like_a_missing_one(
    client: Client, acme: Caller, globex: Caller, seeded: Caller
) -> None:
    theirs = await client.get(f"/v1/api-keys/{seeded.key_id}/usage", headers=globex.headers)
    missing = await client.get("/v1/api-keys/key_doesnotexist/usage", headers=globex.headers)
    assert theirs.status_code == missing.status_code == 404
    assert problem(theirs)["code"] == problem(missing)["code"] == "not_found"
    assert problem(theirs)["detail"] == str(problem(missing)["detail"]).replace(
        "key_doesnotexist", seeded.key_id
    )


async def test_usage_read_scope_is_required(client: Client, acme: Caller, seeded: Caller) -> None:
    reader = await create_key(client, acme, scopes=["keys:read"])
    response = await client.get(f"/v1/api-keys/{seeded.key_id}/usage", headers=reader.headers)
    assert response.status_code == 403
    assert (await client.get(f"/v1/api-keys/{seeded.key_id}", headers=reader.headers)).status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-06-01T12:00:00"}, "until"),  # no offset
        ({"until": "2026-06-01"}, "until"),
        ({"bucket": "week"}, "bucket"),
        ({"since": "2026-06-01T12:00:00Z", "until": "2026-06-01T12:00:00Z"}, "since"),
        ({"since": "2026-06-02T00:00:00Z", "until": "2026-06-01T00:00:00Z"}, "since"),
        ({"bucket": "minute", "since": "2026-05-24T11:59:00Z"}, "since"),  # > 7 days
        ({"bucket": "hour", "since": "2026-02-01T00:00:00Z"}, "since"),  # > 92 days
        ({"bucket": "day", "since": "2023-01-01T00:00:00Z"}, "since"),  # > 3 years
    ],
)
async def test_bad_parameters_are_a_400_naming_the_field(
    client: Client, acme: Caller, params: dict[str, str], field: str
) -> None:
    response = await client.get(f"/v1/api-keys/{acme.key_id}/usage", params=params, headers=acme.headers)
    assert response.status_code == 400, response.text
    assert problem(response)["field"] == field
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_range_limits_are_inclusive(client: Client, acme: Caller, seeded: Caller) -> None:
    await usage(client, acme, seeded.key_id, bucket="minute", since="2026-05-25T12:00:00Z")
    await usage(client, acme, seeded.key_id, bucket="hour", since="2026-03-01T12:00:00Z")


async def test_last_used_at_in_listing_and_read(
    client: Client, acme: Caller, seeded: Caller, clock: FakeClock
) -> None:
    unused = await create_key(client, acme, name="unused")
    read = (await client.get(f"/v1/api-keys/{seeded.key_id}", headers=acme.headers)).json()
    assert read["last_used_at"] == "2026-06-01T11:30:02Z"
    listing = (await client.get("/v1/api-keys", headers=acme.headers)).json()["data"]
    by_id = {key["id"]: key["last_used_at"] for key in listing}
    assert by_id[seeded.key_id] == "2026-06-01T11:30:02Z"
    assert by_id[unused.key_id] is None


async def test_every_request_a_key_makes_is_counted_refused_ones_included(
    client: Client, acme: Caller, runtime: Runtime, clock: FakeClock
) -> None:
    key = await create_key(client, acme, name="e2e", scopes=["services:read"], domains=["app.example.com"])
    browser = {**key.headers, "Origin": "https://app.example.com"}
    made = {"ok": 0, "scope_denied": 0, "origin_mismatch": 0, "revoked": 0}
    for _ in range(4):
        assert (await client.get("/v1/services", headers=browser)).status_code == 200
        made["ok"] += 1
    for _ in range(2):
        assert (await client.get("/v1/api-keys", headers=browser)).status_code == 403
        made["scope_denied"] += 1
    evil = {**key.headers, "Origin": "https://evil.example"}
    assert (await client.get("/v1/services", headers=evil)).status_code == 403
    made["origin_mismatch"] += 1
    clock.advance(90)
    revoked = await client.post(f"/v1/api-keys/{key.key_id}/revoke", headers=acme.headers)
    assert revoked.status_code == 200
    for _ in range(3):
        assert (await client.get("/v1/services", headers=browser)).status_code == 401
        made["revoked"] += 1
    await runtime.usage.flush()
    await runtime.refresh_projections()
    body = await usage(client, acme, key.key_id, bucket="minute", since="2026-06-01T11:00:00Z",
                       until="2026-06-01T13:00:00Z")  # fmt: skip
    assert body["totals"] == made
    assert body["total"] == sum(made.values()) == 10
    assert [b["start"] for b in body["data"]] == ["2026-06-01T12:00:00Z", "2026-06-01T12:01:00Z"]
