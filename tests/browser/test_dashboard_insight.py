"""The usage and security pages in headless Chromium: an auditor finds the flag a revoked key's use
raised, reads its evidence, resolves it, verifies the log and looks at the keys as of an hour ago; an
owner reads usage charts and filters recent requests; a developer sees usage but not the security view.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from playwright.sync_api import Page, expect

from reservekit.clock import FakeClock
from reservekit.domain.events import Metadata
from reservekit.settings import Settings
from reservekit.usecases.commands import CreateKey, OpenAccount, RevokeKey
from reservekit.web.app import create_app
from tests.browser.conftest import LiveServer
from tests.web.dashboard_helpers import PASSWORD
from tests.web.insight_helpers import add_member, seed_usage, usage_row

pytestmark = pytest.mark.browser
Shoot = Callable[[Page, str], Path]
OUTCOME_MIX = ("ok",) * 12 + ("rate_limited", "rate_limited", "origin_mismatch", "scope_denied", "expired")


@dataclass
class World:
    doomed_id: str
    doomed_secret: str
    shop_id: str


async def _prepare(settings: Settings, clock: FakeClock) -> World:
    """Acme with an owner, an auditor and a developer; a day of usage; two keys made at 12:00, one of
    them revoked at 13:30 (the clock's "now" from then on).

    Written through a second app on the same database before the browser starts (Playwright's sync
    API runs its own event loop in the test's thread); the live server follows the log by itself.
    """
    app = create_app(settings, clock=clock)
    meta = Metadata(source="cli")
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        runtime = app.state.runtime
        opened = await runtime.application.execute(OpenAccount(name="Acme", plan="free"), meta)
        account_id = opened.account.account_id
        for email, role in (
            ("owner@acme.example", "owner"),
            ("audit@acme.example", "auditor"),
            ("dev@acme.example", "developer"),
        ):
            await add_member(runtime, account_id, email, role)
        shop = await runtime.application.execute(CreateKey(account_id=account_id, name="Shop backend"), meta)
        doomed = await runtime.application.execute(CreateKey(account_id=account_id, name="Old laptop"), meta)
        clock.advance(60 * 60)
        now = clock.now()
        rows = [
            usage_row(
                shop.key.key_id,
                account_id,
                now - timedelta(minutes=7 * i + 3),
                OUTCOME_MIX[i % len(OUTCOME_MIX)],
                ip=f"198.51.100.{i % 7 + 10}",
                origin="https://shop.example.com" if i % 4 else None,
            )
            for i in range(200)
        ]
        rows += [usage_row(doomed.key.key_id, account_id, now - timedelta(minutes=50 + i)) for i in range(5)]
        # In the order they happened, as the usage writer appends them.
        await seed_usage(runtime, sorted(rows, key=lambda row: row.occurred_at_us))
        clock.advance(30 * 60)
        await runtime.application.execute(
            RevokeKey(account_id=account_id, key_id=doomed.key.key_id, reason="laptop stolen"), meta
        )
        await runtime.refresh_projections()
    return World(doomed.key.key_id, doomed.secret, shop.key.key_id)


@pytest.fixture
def world(live: LiveServer, settings: Settings) -> World:
    return asyncio.run(_prepare(settings, live.clock))


def sign_in(page: Page, email: str) -> None:
    page.goto("/dashboard/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="API Keys")).to_be_visible()


def test_an_auditor_finds_resolves_and_verifies_after_a_revoked_key_is_used(
    world: World, page: Page, live: LiveServer, shoot: Shoot
) -> None:
    used = httpx.get(
        f"{live.url}/v1/services", headers={"Authorization": f"Bearer {world.doomed_secret}"}, timeout=10
    )
    assert used.status_code == 401
    assert used.json()["title"] == "API key revoked"

    sign_in(page, "audit@acme.example")
    page.get_by_role("link", name="Security").click()
    flag = page.get_by_role("article").filter(has_text="Revoked key used")
    deadline = time.monotonic() + 20  # the usage row is written within a second, then projected
    while flag.count() == 0 and time.monotonic() < deadline:
        page.wait_for_timeout(300)
        page.reload()
    expect(flag).to_be_visible()
    expect(flag).to_contain_text(world.doomed_id)
    expect(flag.get_by_label("Evidence", exact=False)).to_contain_text("GET /v1/services")
    shoot(page, "security-flags")

    flag.get_by_label("Resolution").select_option("confirmed")
    flag.get_by_label("Note").fill("Stolen laptop; key was already revoked. Nothing else touched.")
    flag.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status")).to_contain_text("resolved")
    expect(page.get_by_role("article").filter(has_text="Revoked key used")).to_have_count(0)

    page.get_by_role("button", name="Verify log integrity").click()
    expect(page.get_by_role("status")).to_contain_text("The log is intact.")
    shoot(page, "security-verify")

    page.goto("/dashboard/security/")
    expect(page.get_by_label("Instant (UTC)")).to_have_value("2026-06-01T12:30")  # an hour ago, preset
    page.get_by_role("button", name="Show keys").click()
    then = page.get_by_role("row").filter(has_text="Old laptop")
    expect(then.locator(".badge")).to_have_text("active")  # revoked at 13:30, half an hour later
    shoot(page, "security-keys-as-of")

    page.goto("/dashboard/security/trail?type=flag_resolved")
    resolved = page.get_by_role("row").filter(has_text="flag_resolved")
    expect(resolved).to_have_count(1)
    expect(resolved).to_contain_text("(dashboard)")  # the auditor, as the actor
    page.goto("/dashboard/security/trail")
    shoot(page, "security-trail")


def test_an_owner_reads_usage_charts_and_filters_recent_requests(
    world: World, page: Page, shoot: Shoot
) -> None:
    sign_in(page, "owner@acme.example")
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    expect(page.get_by_role("img", name="Requests by outcome")).to_be_visible()
    rate = page.get_by_role("img", name="Requests per minute (busiest minute of each bucket)")
    expect(rate).to_be_visible()
    expect(page.get_by_test_id("usage-total")).to_have_text("205")
    shoot(page, "usage")
    page.get_by_text("The numbers, as a table").click()
    expect(page.get_by_role("table").first).to_be_visible()

    page.get_by_label("Outcome", exact=True).select_option("rate_limited")
    page.get_by_role("button", name="Filter").click()
    outcomes = page.locator('td[data-label="Outcome"]')
    expect(outcomes.first).to_have_text("Rate limited")
    assert set(outcomes.all_inner_texts()) == {"Rate limited"}

    page.get_by_role("link", name="1h", exact=True).click()
    expect(page.get_by_role("link", name="1h", exact=True)).to_have_attribute("aria-current", "true")
    page.goto(f"/dashboard/usage/{world.shop_id}?period=24h")
    expect(page.get_by_role("heading", name="First-seen IP addresses")).to_be_visible()
    expect(page.get_by_text("https://shop.example.com").first).to_be_visible()
    shoot(page, "usage-key")


def test_a_developer_sees_usage_but_is_refused_the_security_view(
    world: World, page: Page, shoot: Shoot
) -> None:
    del world
    sign_in(page, "dev@acme.example")
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_test_id("usage-total")).to_have_text("205")
    # The navigation offers only what the role opens; the address typed by hand is refused.
    expect(page.get_by_role("navigation").get_by_role("link", name="Security")).to_have_count(0)
    page.goto("/dashboard/security/")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_text("Your role (developer) does not allow this (security:view)")).to_be_visible()
    shoot(page, "security-refused")
