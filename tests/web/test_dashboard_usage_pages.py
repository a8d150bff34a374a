"""The usage pages over HTTP on both backends: the chart and its table say what
``GET /v1/api-keys/{id}/usage`` says for the same range, the account sums its keys, the plan's limit is
drawn, recent requests filter and page, a key shows its first-seen IPs and origins, and refusals."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from reservekit.runtime import Runtime
from tests.web.conftest import Caller, Client, create_key, event_count
from tests.web.dashboard_helpers import csrf_of, form_id_of
from tests.web.insight_helpers import add_member, seed_usage, sign_in, usage_row

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ROW = re.compile(r'<tr data-start="([^"]+)">(.*?)</tr>', re.S)
CELL = re.compile(r'<td data-outcome="([^"]+)">(\d+)</td>')
BAR_TITLE = re.compile(r"<title>[^<]*: (\d+) [^<]*</title></rect>")


def table_of(html: str) -> dict[str, dict[str, int]]:
    """``bucket start -> {outcome: count}`` from the page's accessible table, zeros left out."""
    rows = {}
    for start, cells in ROW.findall(html):
        counts = {outcome: int(n) for outcome, n in CELL.findall(cells) if int(n)}
        rows[start] = counts
    return rows


def chart_total(html: str) -> int:
    """The sum of the numbers the by-outcome chart's bars carry."""
    chart = html[html.index('aria-labelledby="by-outcome-t') : html.index('aria-labelledby="rate-t')]
    return sum(int(n) for n in BAR_TITLE.findall(chart))


@pytest.fixture
async def owner(client: Client, acme: Caller, runtime: Runtime) -> Caller:
    await add_member(runtime, acme.account_id, "owner@acme.example", "owner")
    await sign_in(client, "owner@acme.example")
    return acme


async def test_the_chart_and_table_equal_the_api_for_the_same_range(
    client: Client, owner: Caller, runtime: Runtime
) -> None:
    key = await create_key(client, owner, name="seeded")
    await seed_usage(
        runtime,
        [
            usage_row(key.key_id, key.account_id, NOW - timedelta(minutes=5)),
            usage_row(key.key_id, key.account_id, NOW - timedelta(minutes=5, seconds=20), "revoked"),
            usage_row(key.key_id, key.account_id, NOW - timedelta(minutes=42), "rate_limited"),
            usage_row(key.key_id, key.account_id, NOW - timedelta(hours=3), "origin_mismatch"),
            usage_row(key.key_id, key.account_id, NOW - timedelta(hours=3, minutes=1), "scope_denied"),
            usage_row(key.key_id, key.account_id, NOW - timedelta(hours=23, minutes=30)),
            usage_row(key.key_id, key.account_id, NOW - timedelta(days=6), "expired"),
            usage_row(key.key_id, key.account_id, NOW - timedelta(days=20)),
            usage_row(key.key_id, key.account_id, NOW - timedelta(days=40)),  # outside every range
        ],
    )
    for period, span, bucket in (
        ("1h", timedelta(hours=1), "minute"),
        ("24h", timedelta(hours=24), "hour"),
        ("7d", timedelta(days=7), "hour"),
        ("30d", timedelta(days=30), "day"),
    ):
        page = await client.get(f"/dashboard/usage/{key.key_id}", params={"period": period})
        assert page.status_code == 200, page.text
        params = {"since": (NOW - span).isoformat(), "until": NOW.isoformat(), "bucket": bucket}
        api = await client.get(f"/v1/api-keys/{key.key_id}/usage", params=params, headers=owner.headers)
        assert api.status_code == 200, api.text
        body = api.json()
        expected = {bucket["start"]: bucket["counts"] for bucket in body["data"]}
        shown = {start: counts for start, counts in table_of(page.text).items() if counts}
        assert shown == expected, period
        assert expected, period  # every range holds some of the seeded rows
        assert chart_total(page.text) == body["total"], period
        assert f'data-testid="usage-total">{body["total"]}<' in page.text


async def test_the_account_sums_its_keys_and_draws_the_plans_limit(
    client: Client, owner: Caller, runtime: Runtime
) -> None:
    first = await create_key(client, owner, name="first")
    second = await create_key(client, owner, name="second")
    minute = NOW - timedelta(minutes=10)
    await seed_usage(
        runtime,
        [
            *[usage_row(first.key_id, owner.account_id, minute + timedelta(seconds=s)) for s in range(3)],
            usage_row(second.key_id, owner.account_id, minute, "rate_limited"),
            usage_row(second.key_id, owner.account_id, NOW - timedelta(minutes=30)),
        ],
    )
    page = await client.get("/dashboard/usage/", params={"period": "1h"})
    assert page.status_code == 200
    table = table_of(page.text)
    assert table["2026-06-01T11:50:00Z"] == {"ok": 3, "rate_limited": 1}
    assert table["2026-06-01T11:30:00Z"] == {"ok": 1}
    assert re.search(r'data-start="2026-06-01T11:50:00Z">.*?<td data-busiest>4</td>', page.text, re.S)
    assert "plan limit 60/min" in page.text  # the free plan, as a dashed line on the rate chart
    assert 'class="limit"' in page.text


async def test_recent_requests_newest_first_filtered_by_outcome_and_key_and_paged(
    client: Client, owner: Caller, runtime: Runtime
) -> None:
    first = await create_key(client, owner, name="first")
    second = await create_key(client, owner, name="second")
    rows = [
        usage_row(first.key_id, owner.account_id, NOW - timedelta(minutes=60 - i), ip=f"192.0.2.{i}")
        for i in range(55)
    ]
    rows.append(usage_row(second.key_id, owner.account_id, NOW - timedelta(seconds=5), "revoked"))
    await seed_usage(runtime, rows)

    page = (await client.get("/dashboard/usage/")).text
    recent = page[page.index('id="recent"') :]
    assert recent.index("Revoked key") < recent.index("192.0.2.54") < recent.index("192.0.2.53")
    assert "192.0.2.5<" not in recent  # 56 rows: the page holds 50
    older = re.search(r'href="(/dashboard/usage/\?[^"]*before=\d+)#recent"', recent)
    assert older
    page_two = (await client.get(older.group(1).replace("&amp;", "&"))).text
    assert "192.0.2.5<" in page_two
    assert "192.0.2.54" not in page_two

    revoked = (await client.get("/dashboard/usage/", params={"outcome": "revoked"})).text
    assert revoked.count('data-label="Outcome"') == 1
    assert second.key_id in revoked[revoked.index('id="recent"') :]
    by_key = (await client.get("/dashboard/usage/", params={"key": second.key_id})).text
    assert by_key.count('data-label="Outcome"') == 1


async def test_a_keys_page_lists_its_first_seen_ips_and_origins(
    client: Client, owner: Caller, runtime: Runtime
) -> None:
    key = await create_key(client, owner, name="web")
    await seed_usage(
        runtime,
        [
            usage_row(key.key_id, owner.account_id, NOW - timedelta(hours=2), origin="https://a.example"),
            usage_row(key.key_id, owner.account_id, NOW - timedelta(hours=1), ip="203.0.113.99"),
        ],
    )
    page = (await client.get(f"/dashboard/usage/{key.key_id}")).text
    ips = page[page.index("First-seen IP addresses") : page.index("First-seen origins")]
    assert ips.index("203.0.113.99") < ips.index("198.51.100.20")  # newest first
    assert "2026-06-01 10:00 UTC" in ips
    assert "https://a.example" in page[page.index("First-seen origins") :]


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/usage/?period=2h",
        "/dashboard/usage/?outcome=exploded",
        "/dashboard/usage/?before=0",
        "/dashboard/usage/?before=abc",
        "/dashboard/usage/?range=24h",
        "/dashboard/usage/?key=" + "k" * 65,
    ],
)
async def test_bad_input_is_a_400_page_and_writes_nothing(
    client: Client, owner: Caller, runtime: Runtime, path: str
) -> None:
    before = await event_count(runtime)
    response = await client.get(path)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert await event_count(runtime) == before


async def test_another_accounts_key_is_a_404_and_no_session_is_sent_to_sign_in(
    client: Client, owner: Caller, globex: Caller
) -> None:
    assert (await client.get(f"/dashboard/usage/{globex.key_id}")).status_code == 404
    client.cookies.clear()
    response = await client.get("/dashboard/usage/")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/signin"


async def test_developers_and_auditors_see_usage_an_unknown_role_does_not(
    client: Client, acme: Caller, runtime: Runtime
) -> None:
    for email, role, status in (
        ("dev@acme.example", "developer", 200),
        ("audit@acme.example", "auditor", 200),
        ("guest@acme.example", "guest", 403),
    ):
        await add_member(runtime, acme.account_id, email, role)
        client.cookies.clear()
        await sign_in(client, email)
        response = await client.get("/dashboard/usage/")
        assert response.status_code == status, role
        if status == 403:
            assert "Your role (guest) does not allow this (usage:view)" in response.text


def test_table_parser_reads_zero_cells_as_absent() -> None:
    html = '<tr data-start="x"><th>x</th><td data-outcome="ok">0</td><td data-outcome="revoked">2</td></tr>'
    assert table_of(html) == {"x": {"revoked": 2}}


async def test_a_generate_form_with_no_scope_ticked_is_refused_not_a_500(
    client: Client, owner: Caller, runtime: Runtime
) -> None:
    before = await event_count(runtime)
    shown = await client.get("/dashboard/keys/new")
    response = await client.post(
        "/dashboard/keys/",
        data={"_csrf_token": csrf_of(shown.text), "name": "no scopes", "form_id": form_id_of(shown.text)},
    )
    assert response.status_code == 422, response.text
    assert "scope" in response.text
    assert await event_count(runtime) == before
