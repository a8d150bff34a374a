"""The dashboard in headless Chromium: the newcomer's journey from sign-up to a revoked key, and the
refusals around it (wrong password, expired session, forged form, someone else's key, sign-up closed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from playwright.sync_api import Browser, Page, expect

from reservekit.clock import FakeClock
from reservekit.settings import Settings
from tests.browser.conftest import LiveServer, serve

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
Shoot = Callable[[Page, str], Path]


def sign_up(page: Page, email: str = "ada@example.com") -> None:
    page.goto("/dashboard/")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="API Keys")).to_be_visible()


def services(live: LiveServer, secret: str, origin: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret}"}
    if origin:
        headers["Origin"] = origin
    return httpx.get(f"{live.url}/v1/services", headers=headers, timeout=10)


def test_newcomer_signs_up_generates_rotates_and_revokes_a_key(
    page: Page, live: LiveServer, shoot: Shoot
) -> None:
    page.goto("/dashboard/signup")
    shoot(page, "signup")
    sign_up(page)
    expect(page.get_by_text("You have no keys yet.")).to_be_visible()

    page.get_by_role("link", name="Generate new key").first.click()
    page.get_by_label("Name").fill("Shop front end")
    page.get_by_label("Allowed domains").fill("shop.example.com")
    page.get_by_label("services:write").uncheck()
    shoot(page, "generate")
    page.get_by_role("button", name="Generate key").click()

    expect(page.get_by_role("alert")).to_contain_text("It will not be shown again")
    secret = page.get_by_label("Secret key").input_value()
    assert re.fullmatch(r"sk_rsv_[A-Za-z0-9]{38}", secret)
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status")).to_have_text("Key copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    shoot(page, "secret-once")

    assert services(live, secret, "https://shop.example.com").status_code == 200
    assert services(live, secret).status_code == 403

    page.reload()  # the secret page came from a POST: a reload cannot show the secret again
    assert secret not in page.content()
    page.goto("/dashboard/keys/")
    assert secret not in page.content()
    page.go_back()
    assert secret not in page.content()

    page.goto("/dashboard/keys/")
    row = page.get_by_role("row").filter(has_text="Shop front end")
    expect(row).to_contain_text(secret[-4:])
    expect(row).to_contain_text("shop.example.com")
    expect(row.locator(".badge")).to_have_text("active")
    shoot(page, "keys")

    row.get_by_role("link", name="Shop front end").click()
    shoot(page, "key-detail")
    page.get_by_label("Keep the old key working for").select_option("3600")
    page.get_by_role("button", name="Rotate key").click()
    expect(page.get_by_role("heading", name="Your replacement key")).to_be_visible()
    new_secret = page.get_by_label("Secret key").input_value()
    assert new_secret != secret
    assert services(live, new_secret, "https://shop.example.com").status_code == 200
    assert services(live, secret, "https://shop.example.com").status_code == 200  # within its grace hour
    page.get_by_role("link", name="I have copied it").click()

    page.goto("/dashboard/keys/")
    expect(page.get_by_role("row").filter(has_text=secret[-4:]).locator(".badge")).to_have_text("rotating")
    page.get_by_role("row").filter(has_text=new_secret[-4:]).get_by_role("link").click()
    page.get_by_role("link", name="Revoke key…").click()
    shoot(page, "revoke-confirm")
    page.get_by_role("button", name="Yes, revoke this key").click()
    expect(page.locator(".badge").first).to_have_text("revoked")

    refused = services(live, new_secret, "https://shop.example.com")
    assert refused.status_code == 401
    assert refused.json()["title"] == "API key revoked"
    page.goto("/dashboard/keys/")
    expect(page.get_by_role("row").filter(has_text=new_secret[-4:]).locator(".badge")).to_have_text("revoked")
    shoot(page, "keys-after-revoke")


def test_keyboard_only_sign_in_with_visible_focus_and_a_phone_layout(
    browser: Browser, live: LiveServer, shoot: Shoot
) -> None:
    ctx = browser.new_context(base_url=live.url, viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        phone = ctx.new_page()
        sign_up(phone)
        phone.get_by_role("link", name="Generate new key").first.click()
        phone.get_by_role("button", name="Generate key").click()
        phone.goto("/dashboard/keys/")
        shoot(phone, "keys-phone")
        phone.get_by_role("button", name="Sign out").click()
        skip = phone.get_by_role("link", name="Skip to content")
        skip.focus()  # hidden off-screen until focused, then shown for keyboard users
        box = skip.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        phone.get_by_label("Email").focus()
        outline = phone.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"  # focus is visible
        phone.keyboard.type("ada@example.com")
        phone.keyboard.press("Tab")
        phone.keyboard.type(PASSWORD)
        phone.keyboard.press("Enter")
        expect(phone.get_by_role("heading", name="API Keys")).to_be_visible()
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    finally:
        ctx.close()


def test_sign_in_failures_say_the_same_thing_for_unknown_email_and_wrong_password(
    page: Page, shoot: Shoot
) -> None:
    sign_up(page)
    page.get_by_role("button", name="Sign out").click()
    messages = []
    for email, password in [("nobody@example.com", PASSWORD), ("ada@example.com", "not the password")]:
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        messages.append(page.get_by_role("alert").inner_text())
    assert messages == ["That email and password do not match an account."] * 2
    shoot(page, "signin-failed")


def test_an_idle_session_ends_and_sends_the_member_to_sign_in(page: Page, live: LiveServer) -> None:
    sign_up(page)
    live.clock.advance(61 * 60)
    page.goto("/dashboard/keys/")
    expect(page.get_by_role("status")).to_have_text("Your session ended. Please sign in again.")
    assert page.url.endswith("/dashboard/signin?expired=true")


def test_a_forged_form_is_refused(page: Page, live: LiveServer) -> None:
    sign_up(page)
    page.goto("/dashboard/keys/new")
    page.locator('#main input[name="_csrf_token"]').evaluate("field => field.value = 'forged'")
    page.get_by_role("button", name="Generate key").click()
    expect(page.get_by_role("heading", name="Form refused")).to_be_visible()
    page.goto("/dashboard/keys/")
    expect(page.get_by_text("You have no keys yet.")).to_be_visible()


def test_another_accounts_key_is_a_404_page(browser: Browser, live: LiveServer, page: Page) -> None:
    other = browser.new_context(base_url=live.url)
    try:
        theirs = other.new_page()
        sign_up(theirs, "grace@example.com")
        theirs.get_by_role("link", name="Generate new key").first.click()
        theirs.get_by_role("button", name="Generate key").click()
        theirs.get_by_role("link", name="I have copied it").click()
        key_path = theirs.url.removeprefix(live.url)
    finally:
        other.close()
    sign_up(page)
    response = page.goto(key_path)
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()


@pytest.fixture
def closed(settings: Settings, clock: FakeClock) -> Iterator[LiveServer]:
    yield from serve(msgspec.structs.replace(settings, signup_open=False), clock)


def test_sign_up_closed(browser: Browser, closed: LiveServer, shoot: Shoot) -> None:
    ctx = browser.new_context(base_url=closed.url)
    try:
        page = ctx.new_page()
        page.goto("/dashboard/signin")
        expect(page.get_by_role("link", name="Create an account")).to_have_count(0)
        response = page.goto("/dashboard/signup")
        assert response is not None
        assert response.status == 403
        expect(page.get_by_role("heading", name="Sign-up is closed")).to_be_visible()
    finally:
        ctx.close()
