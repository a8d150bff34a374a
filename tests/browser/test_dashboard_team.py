"""Team, Webhooks and All accounts in headless Chromium: an owner invites a developer and an auditor
who join by link and meet their role's limits; a role change and a removal hold at the next click; an
owner adds a webhook endpoint and watches its deliveries; an operator re-plans an account.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec
import pytest
from playwright.sync_api import Browser, Page, expect

from reservekit.cli.context import cli_metadata, open_runtime
from reservekit.clock import FakeClock
from reservekit.settings import Settings
from reservekit.usecases.commands import AddMember, OpenAccount
from tests.browser.conftest import LiveServer, serve
from tests.browser.test_dashboard_journey import PASSWORD, sign_up

pytestmark = pytest.mark.browser
Shoot = Callable[[Page, str], Path]


def sign_in(page: Page, email: str) -> None:
    page.goto("/dashboard/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="API Keys")).to_be_visible()


def invite(page: Page, email: str, role: str) -> str:
    page.get_by_role("link", name="Team").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Role", exact=True).select_option(role)
    page.get_by_role("button", name="Create invitation link").click()
    expect(page.get_by_role("alert")).to_contain_text("It will not be shown again")
    return page.get_by_label("Invitation link").input_value()


def join(browser: Browser, live: LiveServer, link: str, shoot: Shoot | None = None) -> Page:
    ctx = browser.new_context(base_url=live.url)
    page = ctx.new_page()
    page.goto(link)
    expect(page.get_by_role("heading", name="Join the team")).to_be_visible()
    if shoot:
        shoot(page, "team-join")
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_role("heading", name="API Keys")).to_be_visible()
    return page


def test_invited_members_join_by_link_and_meet_their_roles_limits(
    browser: Browser, live: LiveServer, page: Page, shoot: Shoot
) -> None:
    sign_up(page)
    link = invite(page, "dev@example.com", "developer")
    assert link.startswith(f"{live.url}/dashboard/join?token=")
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status")).to_have_text("Link copied to the clipboard.")
    shoot(page, "team-invited")

    dev = join(browser, live, link, shoot)
    expect(dev.get_by_role("link", name="Generate new key")).to_be_visible()  # developers manage keys
    dev.get_by_role("link", name="Team").click()
    expect(dev.get_by_role("button", name="Create invitation link")).to_have_count(0)
    dev.get_by_role("link", name="Webhooks").click()
    expect(dev.get_by_role("link", name="Add endpoint")).to_have_count(0)
    refused = dev.goto("/dashboard/webhooks/new")
    assert refused is not None
    assert refused.status == 403
    expect(dev.get_by_role("heading", name="Not allowed")).to_be_visible()
    shoot(dev, "role-refused")
    assert dev.goto(link) is not None
    expect(dev.get_by_role("heading", name="Invitation not valid")).to_be_visible()  # used once

    page.goto("/dashboard/keys/")
    auditor = join(browser, live, invite(page, "audit@example.com", "auditor"))
    expect(auditor.get_by_role("link", name="Generate new key")).to_have_count(0)
    refused = auditor.goto("/dashboard/keys/new")
    assert refused is not None
    assert refused.status == 403
    expect(auditor.get_by_text("Your role (auditor) does not allow this")).to_be_visible()

    page.goto("/dashboard/keys/")
    invite(page, "later@example.com", "auditor")  # stays pending in the screenshot
    page.get_by_role("link", name="I have copied it").click()
    page.get_by_label("Role of audit@example.com").select_option("developer")
    page.get_by_role("row").filter(has_text="audit@example.com").get_by_role(
        "button", name="Change role"
    ).click()
    expect(page.get_by_role("status")).to_have_text("Role changed.")
    auditor.goto("/dashboard/keys/")
    expect(auditor.get_by_role("link", name="Generate new key")).to_be_visible()  # at the next click
    shoot(page, "team")

    page.get_by_role("link", name="Remove dev@example.com").click()
    page.get_by_role("button", name="Yes, remove this member").click()
    expect(page.get_by_role("status")).to_have_text("Member removed. Their sessions have ended.")
    dev.goto("/dashboard/keys/")
    expect(dev.get_by_role("status")).to_have_text("Your session ended. Please sign in again.")
    dev.get_by_label("Email").fill("dev@example.com")
    dev.get_by_label("Password").fill(PASSWORD)
    dev.get_by_role("button", name="Sign in").click()
    expect(dev.get_by_role("alert")).to_have_text("That email and password do not match an account.")
    dev.context.close()
    auditor.context.close()


class _Hooks(BaseHTTPRequestHandler):
    answers: list[int] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(self.answers.pop(0) if self.answers else 204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        del args


@pytest.fixture
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    _Hooks.answers = [500]  # the first delivery fails, the retry succeeds
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()


@pytest.fixture
def hooks_live(settings: Settings, clock: FakeClock) -> Iterator[LiveServer]:
    loopback = msgspec.structs.replace(
        settings,
        webhooks_allow_loopback=True,
        webhooks_backoff_base_seconds=0.2,
        webhooks_backoff_max_seconds=0.5,
    )
    yield from serve(loopback, clock)


def test_an_owner_adds_an_endpoint_and_watches_its_deliveries(
    hooks_live: LiveServer, receiver: str, browser: Browser, shoot: Shoot
) -> None:
    ctx = browser.new_context(base_url=hooks_live.url, viewport={"width": 1280, "height": 860})
    try:
        page = ctx.new_page()
        sign_up(page)
        page.get_by_role("link", name="Webhooks").click()
        page.get_by_role("link", name="Add your first endpoint").click()
        page.get_by_label("URL").fill(receiver)
        page.get_by_label("Description").fill("On-call alerts")
        page.get_by_label("key.revoked").check()
        shoot(page, "webhook-new")
        page.get_by_label("URL").fill("https://10.0.0.7/hooks")
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#url-error")).to_contain_text("private")  # a private address is refused
        page.get_by_label("URL").fill(receiver)
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.get_by_label("Signing secret").input_value()
        assert secret.startswith("whsec_")
        shoot(page, "webhook-secret")
        page.get_by_role("link", name="I have copied it").click()
        page.get_by_role("button", name="Send test event").click()
        expect(page.get_by_role("status")).to_contain_text("Test event queued")
        for _ in range(150):  # the dispatcher sends in the background: 500, then the retry's 204
            page.reload()
            if page.get_by_text("HTTP 204").count():
                break
            page.wait_for_timeout(200)
        expect(page.get_by_text(re.compile(r"HTTP 500 · \d+ ms"))).to_be_visible()
        expect(page.get_by_text(re.compile(r"HTTP 204 · \d+ ms"))).to_be_visible()
        assert secret not in page.content()
        shoot(page, "webhook-detail")
        page.get_by_role("button", name="Disable").click()
        expect(page.locator(".heading-row .badge")).to_have_text("disabled")
        page.get_by_role("link", name="← Webhooks").click()
        expect(page.get_by_role("row").filter(has_text="On-call alerts").locator(".badge")).to_have_text(
            "disabled"
        )
        shoot(page, "webhooks")
    finally:
        ctx.close()


@pytest.fixture
def operator_live(settings: Settings, clock: FakeClock) -> Iterator[LiveServer]:
    async def seed() -> None:
        async with open_runtime(settings) as runtime:
            for name, plan in [("Acme", "free"), ("Globex", "pro"), ("Initech", "free")]:
                await runtime.application.execute(OpenAccount(name=name, plan=plan), cli_metadata())
            ops = await runtime.application.execute(OpenAccount(name="Ops", operator=True), cli_metadata())
            for email, role in [("ops@example.com", "owner"), ("watch@example.com", "auditor")]:
                command = AddMember(
                    account_id=ops.account.account_id, email=email, password=PASSWORD, role=role
                )
                await runtime.application.execute(command, cli_metadata())

    asyncio.run(seed())
    yield from serve(settings, clock)


def test_an_operator_changes_a_plan_and_an_operator_auditor_only_looks(
    operator_live: LiveServer, browser: Browser, shoot: Shoot
) -> None:
    ctx = browser.new_context(base_url=operator_live.url, viewport={"width": 1280, "height": 860})
    try:
        page = ctx.new_page()
        sign_in(page, "ops@example.com")
        page.get_by_role("link", name="All accounts").click()
        row = page.get_by_role("row").filter(has_text="Initech")
        page.get_by_label("Plan of Initech", exact=True).select_option("enterprise")
        row.get_by_role("button", name="Change the plan of Initech").click()
        expect(page.get_by_role("status")).to_contain_text("Plan changed")
        expect(page.get_by_role("row").filter(has_text="Initech").locator(".badge")).to_have_text(
            "enterprise"
        )
        shoot(page, "operator-accounts")
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, "watch@example.com")
        page.get_by_role("link", name="All accounts").click()
        expect(page.get_by_role("button", name="Change the plan of Initech")).to_have_count(0)
    finally:
        ctx.close()


def test_a_member_of_an_ordinary_account_has_no_all_accounts_page(page: Page) -> None:
    sign_up(page)
    expect(page.get_by_role("link", name="All accounts")).to_have_count(0)
    refused = page.goto("/dashboard/operator/accounts")
    assert refused is not None
    assert refused.status == 403
