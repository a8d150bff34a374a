"""The dashboard over HTTP (no browser): members, sessions, CSRF, headers, the API Keys pages.

The browser journey is tests/browser/test_dashboard_journey.py; these pin each rule on both backends.
"""

from __future__ import annotations

import re
import time

import httpx
import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import select

from reservekit.clock import FakeClock
from reservekit.events.tables import events
from reservekit.members.directory import dashboard_sessions, member_credentials
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.web.app import create_app
from tests.web.conftest import Caller, Client, event_count, serving
from tests.web.dashboard_helpers import (
    PASSWORD,
    SECRET,
    csrf_of,
    form_id_of,
    generate,
    sign_up,
    submit,
)


async def _events(runtime: Runtime) -> list[dict[str, object]]:
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(select(events).order_by(events.c.position))).mappings().all()
    return [
        {
            "type": r["type"],
            "data": msgspec.json.decode(r["data"]),
            "meta": msgspec.json.decode(r["metadata"]),
        }
        for r in rows
    ]


async def test_sign_up_opens_a_free_account_with_a_session_cookie_and_no_password_in_the_log(
    client: Client, runtime: Runtime
) -> None:
    response = await sign_up(client)
    assert response.headers["location"] == "/dashboard/keys"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("rk_session=")
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    page = await client.get("/dashboard/keys/")
    assert page.status_code == 200
    assert "You have no keys yet" in page.text
    logged = await _events(runtime)
    assert [e["type"] for e in logged] == ["account_opened", "member_added", "member_signed_in"]
    assert logged[0]["data"]["plan"] == "free"  # type: ignore[index]
    assert logged[1]["meta"]["source"] == "dashboard"  # type: ignore[index]
    everything = msgspec.json.encode(logged).decode()
    assert PASSWORD not in everything
    assert "argon2" not in everything
    async with runtime.engine.connect() as conn:
        stored = (await conn.execute(select(member_credentials))).mappings().one()
        sessions = (await conn.execute(select(dashboard_sessions))).mappings().all()
    assert stored["password_hash"].startswith("$argon2id$")
    token = re.search(r"rk_session=([^;]+)", cookie).group(1)  # type: ignore[union-attr]
    assert [s["token_hash"] for s in sessions] != [token]  # only a hash of the token is stored
    assert len(sessions) == 1


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [("not-an-email", PASSWORD, "email"), ("bo@example.com", "short", "password")],
)
async def test_sign_up_refuses_bad_input_naming_the_field_and_writes_nothing(
    client: Client, runtime: Runtime, email: str, password: str, field: str
) -> None:
    response = await submit(
        client, "/dashboard/signup", "/dashboard/signup", {"email": email, "password": password}
    )
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text
    assert await event_count(runtime) == 0


async def test_sign_up_twice_with_one_email_is_refused(client: Client, runtime: Runtime) -> None:
    await sign_up(client)
    client.cookies.clear()
    again = await submit(
        client, "/dashboard/signup", "/dashboard/signup", {"email": "ADA@example.com", "password": PASSWORD}
    )
    assert again.status_code == 422
    assert "already exists" in again.text
    assert await event_count(runtime) == 3


async def test_unknown_email_and_wrong_password_get_the_same_answer_in_similar_time(
    client: Client, runtime: Runtime
) -> None:
    await sign_up(client)
    client.cookies.clear()
    answers = []
    for email, password in [("nobody@example.com", PASSWORD), ("ada@example.com", "wrong password!!")]:
        started = time.perf_counter()
        response = await submit(
            client, "/dashboard/signin", "/dashboard/signin", {"email": email, "password": password}
        )
        answers.append((response.status_code, re.search(r'id="signin-error">([^<]+)<', response.text)))
        answers.append(time.perf_counter() - started)  # type: ignore[arg-type]
    (status_a, msg_a), took_a, (status_b, msg_b), took_b = answers  # type: ignore[misc]
    assert status_a == status_b == 401
    assert msg_a.group(1) == msg_b.group(1) == "That email and password do not match an account."
    # Both paths run one Argon2 verification: neither answers in a fraction of the other's time.
    assert took_a > took_b / 4
    assert took_b > took_a / 4
    assert "rk_session" not in client.cookies


async def test_sign_in_attempts_are_limited_per_email(settings: Settings, clock: FakeClock) -> None:
    limited = msgspec.structs.replace(settings, sign_in_attempts_per_email_per_minute=2)
    async with serving(create_app(limited, clock=clock)) as client:
        await sign_up(client)  # the sign-up's own sign-in is the first attempt
        client.cookies.clear()
        fields = {"email": "ada@example.com", "password": "wrong password!!"}
        first = await submit(client, "/dashboard/signin", "/dashboard/signin", fields)
        second = await submit(client, "/dashboard/signin", "/dashboard/signin", fields)
        assert first.status_code == 401
        assert second.status_code == 429
        assert "Too many sign-in attempts" in second.text
        clock.advance(61)
        right = await submit(
            client, "/dashboard/signin", "/dashboard/signin", {**fields, "password": PASSWORD}
        )
        assert right.status_code == 303


async def test_every_dashboard_page_has_strict_security_headers(client: Client) -> None:
    for path in ["/dashboard/signin", "/dashboard/signup", "/dashboard/static/dashboard.css"]:
        response = await client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["referrer-policy"] == "same-origin"
    page = await client.get("/dashboard/signin")
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # no inline script: only <script src=…>


async def test_a_form_without_its_csrf_token_is_refused_and_writes_nothing(
    client: Client, runtime: Runtime
) -> None:
    await client.get("/dashboard/signup")  # has the CSRF cookie, but posts without the field
    response = await client.post("/dashboard/signup", data={"email": "x@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert "Form refused" in response.text
    assert await event_count(runtime) == 0


async def test_pages_need_a_session_and_sign_out_ends_it(client: Client, runtime: Runtime) -> None:
    assert (await client.get("/dashboard/keys/")).headers["location"] == "/dashboard/signin"
    await sign_up(client)
    stolen = dict(client.cookies)
    page = await client.get("/dashboard/keys/")
    out = await client.post("/dashboard/signout", data={"_csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert (await client.get("/dashboard/keys/")).status_code == 303
    client.cookies.update(stolen)  # the old cookie value no longer opens anything
    assert (await client.get("/dashboard/keys/")).headers["location"] == "/dashboard/signin?expired=true"
    assert (await _events(runtime))[-1]["type"] == "member_signed_out"


async def test_sessions_end_after_the_idle_timeout_and_the_absolute_lifetime(
    client: Client, clock: FakeClock, settings: Settings
) -> None:
    await sign_up(client)
    clock.advance(settings.session_idle_minutes * 60 - 5)
    assert (await client.get("/dashboard/keys/")).status_code == 200  # activity keeps it alive
    clock.advance(settings.session_idle_minutes * 60 + 1)
    assert (await client.get("/dashboard/keys/")).headers["location"] == "/dashboard/signin?expired=true"
    await submit(
        client, "/dashboard/signin", "/dashboard/signin", {"email": "ada@example.com", "password": PASSWORD}
    )
    for _ in range(settings.session_max_hours * 2 + 1):  # active every 30 minutes, never idle
        clock.advance(30 * 60)
        if (await client.get("/dashboard/keys/")).status_code != 200:
            break
    else:
        pytest.fail("the session outlived its absolute lifetime")


async def test_generate_shows_the_secret_once_and_it_works_for_its_domain(
    client: Client, runtime: Runtime
) -> None:
    await sign_up(client)
    response = await submit(
        client,
        "/dashboard/keys/new",
        "/dashboard/keys/",
        {"name": "web", "domains": "shop.example.com\n*.example.org", "scopes": ["services:read"]},
    )
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    secret = SECRET.search(response.text).group(1)  # type: ignore[union-attr]
    assert "will not be shown again" in response.text
    listing = await client.get("/dashboard/keys/")
    assert secret not in listing.text
    assert secret[-4:] in listing.text  # prefix…last4 only
    api = {"Authorization": f"Bearer {secret}"}
    ok = await client.get("/v1/services", headers={**api, "Origin": "https://shop.example.com"})
    assert ok.status_code == 200
    assert (await client.get("/v1/services", headers=api)).status_code == 403
    created = next(e for e in await _events(runtime) if e["type"] == "key_created")
    meta = created["meta"]
    assert meta["source"] == "dashboard"  # type: ignore[index]
    assert meta["actor_member_id"].startswith("mem_")  # type: ignore[index]
    assert meta["client_ip"] == "203.0.113.10"  # type: ignore[index]
    assert "user_agent" in meta  # type: ignore[operator]


async def test_resubmitting_the_generate_form_does_not_mint_a_second_key(
    client: Client, runtime: Runtime
) -> None:
    await sign_up(client)
    shown = await client.get("/dashboard/keys/new")
    form_id = form_id_of(shown.text)
    body = {"_csrf_token": csrf_of(shown.text), "form_id": form_id, "scopes": ["services:read"]}
    assert (await client.post("/dashboard/keys/", data=body)).status_code == 201
    again = await client.post("/dashboard/keys/", data=body)
    assert again.status_code == 409
    assert "sk_rsv_" not in again.text
    assert len([e for e in await _events(runtime) if e["type"] == "key_created"]) == 1


async def test_generate_refuses_a_bad_domain_naming_the_field(client: Client, runtime: Runtime) -> None:
    await sign_up(client)
    before = await event_count(runtime)
    response = await submit(
        client,
        "/dashboard/keys/new",
        "/dashboard/keys/",
        {"domains": "https://bad domain/", "scopes": ["keys:read"]},
    )
    assert response.status_code == 422
    assert 'id="domains-error"' in response.text
    assert await event_count(runtime) == before


async def test_edit_rotate_and_revoke_from_the_key_page(client: Client, runtime: Runtime) -> None:
    await sign_up(client)
    secret = await generate(client, name="web", scopes=["services:read"])
    key_id = re.search(
        r'href="/dashboard/keys/(key_[^"]+)"', (await client.get("/dashboard/keys/")).text
    ).group(1)  # type: ignore[union-attr]
    page = f"/dashboard/keys/{key_id}"
    edited = await submit(
        client, page, page, {"name": "web (shop)", "domains": "shop.example.com", "scopes": ["services:read"]}
    )
    assert edited.status_code == 303
    api = {"Authorization": f"Bearer {secret}"}
    # The replica's key view applied the edit: the new domain restriction holds at once.
    assert (await client.get("/v1/services", headers=api)).status_code == 403
    assert (
        await client.get("/v1/services", headers={**api, "Origin": "https://shop.example.com"})
    ).status_code == 200
    assert "web (shop)" in (await client.get(page)).text
    assert "web (shop)" in (await client.get("/dashboard/keys/")).text  # the api_keys projection applied it
    rotated = await submit(client, page, f"{page}/rotate", {"grace_period_seconds": "3600"})
    assert rotated.status_code == 201
    assert rotated.headers["cache-control"] == "no-store"
    new_secret = SECRET.search(rotated.text).group(1)  # type: ignore[union-attr]
    assert new_secret != secret
    assert "rotating" in (await client.get("/dashboard/keys/")).text
    confirm = await client.get(f"{page}/revoke")
    assert "Yes, revoke this key" in confirm.text
    revoked = await client.post(f"{page}/revoke", data={"_csrf_token": csrf_of(confirm.text)})
    assert revoked.status_code == 303
    refused = await client.get("/v1/services", headers={**api, "Origin": "https://shop.example.com"})
    assert refused.status_code == 401
    assert refused.json()["title"] == "API key revoked"
    listing = (await client.get("/dashboard/keys/")).text
    assert "badge-revoked" in listing  # a revoked key stays listed
    types = [e["type"] for e in await _events(runtime)]
    assert types[-4:] == ["key_updated", "key_rotated", "key_created", "key_revoked"]


async def test_another_accounts_key_is_a_404_page(client: Client, acme: Caller) -> None:
    await sign_up(client)
    for path in [
        f"/dashboard/keys/{acme.key_id}",
        f"/dashboard/keys/{acme.key_id}/revoke",
        "/dashboard/keys/key_nope",
    ]:
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "There is no such page or key here." in response.text


async def test_sign_up_closed_refuses_the_form(settings: Settings, clock: FakeClock) -> None:
    closed = msgspec.structs.replace(settings, signup_open=False)
    app: Litestar = create_app(closed, clock=clock)
    async with serving(app) as client:
        assert (await client.get("/dashboard/signup")).status_code == 403
        signin = await client.get("/dashboard/signin")
        assert "Create an account" not in signin.text
        posted = await client.post(
            "/dashboard/signup",
            data={"_csrf_token": csrf_of(signin.text), "email": "a@b.co", "password": PASSWORD},
        )
        assert posted.status_code == 403
        assert await event_count(app.state.runtime) == 0


async def test_changing_the_password_ends_every_other_session(client: Client, app: Litestar) -> None:
    await sign_up(client)
    async with serving(app) as other:
        await submit(
            other,
            "/dashboard/signin",
            "/dashboard/signin",
            {"email": "ada@example.com", "password": PASSWORD},
        )
        assert (await other.get("/dashboard/keys/")).status_code == 200
        changed = await submit(
            client,
            "/dashboard/account",
            "/dashboard/account/password",
            {"current_password": PASSWORD, "new_password": "an even longer passphrase"},
        )
        assert changed.status_code == 200
        assert "Password changed" in changed.text
        assert (await other.get("/dashboard/keys/")).status_code == 303
        assert (await client.get("/dashboard/keys/")).status_code == 200  # the changer keeps a fresh session


async def test_secure_cookies_use_the_host_prefix(settings: Settings, clock: FakeClock) -> None:
    secure = msgspec.structs.replace(settings, secure_cookies=True)
    app = create_app(secure, clock=clock)
    async with serving(app) as client:
        client.base_url = httpx.URL("https://testserver")
        response = await sign_up(client)
        session_cookie = next(c for c in response.headers.get_list("set-cookie") if "rk_session" in c)
        assert session_cookie.startswith("__Host-rk_session=")
        assert "Secure" in session_cookie
        assert "Path=/" in session_cookie
        assert "Domain" not in session_cookie
        assert (await client.get("/dashboard/keys/")).status_code == 200


async def test_keys_as_of_includes_dashboard_edits(client: Client, clock: FakeClock) -> None:
    await sign_up(client)
    secret = await generate(client, name="before", scopes=["audit:read", "keys:read"])
    listing = (await client.get("/dashboard/keys/")).text
    key_id = re.search(r'href="/dashboard/keys/(key_[^"]+)"', listing).group(1)  # type: ignore[union-attr]
    before = clock.now()
    clock.advance(60)
    page = f"/dashboard/keys/{key_id}"
    await submit(client, page, page, {"name": "after", "scopes": ["audit:read", "keys:read"]})
    api = {"Authorization": f"Bearer {secret}"}
    then = await client.get("/v1/audit/keys", params={"as_of": before.isoformat()}, headers=api)
    now = await client.get("/v1/audit/keys", params={"as_of": clock.now().isoformat()}, headers=api)
    assert [k["name"] for k in then.json()["data"]] == ["before"]
    assert [k["name"] for k in now.json()["data"]] == ["after"]


async def test_an_unknown_query_parameter_is_an_html_400_page(client: Client) -> None:
    response = await client.get("/dashboard/signin", params={"next": "https://evil.example"})
    assert response.status_code == 400
    assert "unknown query parameter" in response.text
    assert response.headers["content-type"].startswith("text/html")
