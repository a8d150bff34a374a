"""The Team page over HTTP on both backends: invitations by link, joining, role changes, removals.

Every step is an event; the invitation link's token never reaches the log; bad input and refusals
write nothing.
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack

import httpx
import msgspec
from litestar import Litestar
from sqlalchemy import func, select

from reservekit.clock import FakeClock
from reservekit.domain.events import MemberRemoved, Metadata
from reservekit.events.tables import events
from reservekit.members.directory import dashboard_sessions, member_credentials, member_invitations
from reservekit.runtime import Runtime
from reservekit.usecases.ports import StreamWrite
from tests.web.conftest import Client, event_count
from tests.web.dashboard_helpers import PASSWORD, csrf_of, sign_up, submit
from tests.web.team_helpers import add_member, signed_in

LINK = re.compile(r'id="secret"[^>]*value="(http://testserver/dashboard/join\?token=([^"]+))"')


async def _logged(runtime: Runtime) -> list[tuple[str, dict[str, object], dict[str, object]]]:
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            select(events.c.type, events.c.data, events.c.metadata).order_by(events.c.position)
        )
        return [(r.type, msgspec.json.decode(r.data), msgspec.json.decode(r.metadata)) for r in rows]


async def _count(runtime: Runtime, table: object) -> int:
    async with runtime.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


async def invite(client: Client, email: str, role: str) -> tuple[str, str]:
    response = await submit(
        client, "/dashboard/team/", "/dashboard/team/invitations", {"email": email, "role": role}
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    match = LINK.search(response.text)
    assert match, response.text
    return match.group(1), match.group(2)


async def test_an_invited_developer_joins_once_with_the_link_and_the_token_never_reaches_the_log(
    client: Client, app: Litestar, runtime: Runtime
) -> None:
    await sign_up(client)
    link, token = await invite(client, "Dev@Example.com", "developer")
    team = (await client.get("/dashboard/team/")).text
    assert "dev@example.com" in team
    assert token not in team  # the link is shown once, in the answer to the POST
    async with AsyncExitStack() as stack:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.30", 50_000))
        invitee = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://testserver")
        )
        shown = await invitee.get(link.removeprefix("http://testserver"))
        assert shown.status_code == 200
        assert "developer" in shown.text
        joined = await invitee.post(
            "/dashboard/join/",
            data={"_csrf_token": csrf_of(shown.text), "token": token, "password": PASSWORD},
        )
        assert joined.status_code == 303
        keys = await invitee.get("/dashboard/keys/")
        assert keys.status_code == 200
        assert "Generate new key" in keys.text  # a developer manages keys
        assert (await invitee.get("/dashboard/team/")).status_code == 200
        again = await invitee.post(
            "/dashboard/join/",
            data={"_csrf_token": csrf_of(shown.text), "token": token, "password": PASSWORD},
        )
        assert again.status_code == 410
    logged = await _logged(runtime)
    types = [t for t, _, _ in logged]
    assert types[-4:] == ["member_invited", "member_invitation_accepted", "member_added", "member_signed_in"]
    invited = logged[-4]
    assert invited[1]["email"] == "dev@example.com"
    assert invited[1]["role"] == "developer"
    assert invited[2]["source"] == "dashboard"
    added = logged[-2][1]
    assert added["role"] == "developer"
    assert added["invitation_id"] == invited[1]["invitation_id"]
    assert token not in msgspec.json.encode(logged).decode()
    assert await _count(runtime, member_invitations) == 0  # spent: its hash is gone too


async def test_an_invitation_expires_after_seven_days_and_a_withdrawn_one_is_refused(
    client: Client, runtime: Runtime, clock: FakeClock
) -> None:
    await sign_up(client)
    _, late = await invite(client, "late@example.com", "auditor")
    _, withdrawn = await invite(client, "gone@example.com", "auditor")
    page = await client.get("/dashboard/team/")
    invitation_id = re.search(r"/dashboard/team/invitations/(inv_[^/]+)/withdraw", page.text).group(1)  # type: ignore[union-attr]
    pair = {"late@example.com": late, "gone@example.com": withdrawn}
    out = await client.post(
        f"/dashboard/team/invitations/{invitation_id}/withdraw", data={"_csrf_token": csrf_of(page.text)}
    )
    assert out.status_code == 303
    assert (await _logged(runtime))[-1][0] == "member_invitation_revoked"
    clock.advance(7 * 86_400 + 1)
    before = await event_count(runtime)
    for email, token in pair.items():
        shown = await client.get(f"/dashboard/join/?token={token}")
        assert shown.status_code == 410, email
        assert "not valid" in shown.text
        posted = await client.post(
            "/dashboard/join/", data={"_csrf_token": csrf_of(page.text), "token": token, "password": PASSWORD}
        )
        assert posted.status_code == 410
    assert await event_count(runtime) == before
    assert await _count(runtime, member_credentials) == 1


async def test_bad_invitations_and_bad_passwords_are_refused_and_write_nothing(
    client: Client, runtime: Runtime
) -> None:
    await sign_up(client)
    before = await event_count(runtime)
    for fields, field in [
        ({"email": "not an email", "role": "developer"}, "email"),
        ({"email": "a@example.com", "role": "admin"}, "role"),
    ]:
        response = await submit(client, "/dashboard/team/", "/dashboard/team/invitations", fields)
        assert response.status_code == 422, fields
        assert f'id="{field}-error"' in response.text
    assert await event_count(runtime) == before
    assert await _count(runtime, member_invitations) == 0
    forged = await client.post(
        "/dashboard/team/invitations", data={"email": "x@example.com", "role": "owner"}
    )
    assert forged.status_code == 403  # no CSRF field
    assert await event_count(runtime) == before
    _, token = await invite(client, "short@example.com", "developer")
    after_invite = await event_count(runtime)
    shown = await client.get(f"/dashboard/join/?token={token}")
    short = await client.post(
        "/dashboard/join/", data={"_csrf_token": csrf_of(shown.text), "token": token, "password": "short"}
    )
    assert short.status_code == 422
    assert 'id="password-error"' in short.text
    assert await event_count(runtime) == after_invite
    assert await _count(runtime, member_credentials) == 1
    unknown = await client.get("/dashboard/join/?token=nope")
    assert unknown.status_code == 410


async def test_a_removed_member_is_signed_out_at_their_next_request_and_cannot_sign_in(
    client: Client, app: Litestar, runtime: Runtime
) -> None:
    await sign_up(client)
    me = (await client.get("/dashboard/account")).text
    account_id = re.search(r"<code>(acct_[^<]+)</code>", me).group(1)  # type: ignore[union-attr]
    member_id = await add_member(runtime, account_id, "dev@example.com", "developer")
    async with AsyncExitStack() as stack:
        dev = await signed_in(stack, app, "dev@example.com")
        assert (await dev.get("/dashboard/keys/")).status_code == 200
        confirm = await client.get(f"/dashboard/team/members/{member_id}/remove")
        assert "Yes, remove this member" in confirm.text
        removed = await client.post(
            f"/dashboard/team/members/{member_id}/remove", data={"_csrf_token": csrf_of(confirm.text)}
        )
        assert removed.status_code == 303
        # Gone at once, before their next request: every session and the credential.
        async with runtime.engine.connect() as conn:
            for table in (dashboard_sessions, member_credentials):
                left = await conn.scalar(
                    select(func.count()).select_from(table).where(table.c.member_id == member_id)
                )
                assert left == 0, table.name
        next_page = await dev.get("/dashboard/keys/")
        assert next_page.headers["location"] == "/dashboard/signin?expired=true"
        again = await submit(
            dev, "/dashboard/signin", "/dashboard/signin", {"email": "dev@example.com", "password": PASSWORD}
        )
        assert again.status_code == 401
    logged = await _logged(runtime)
    assert logged[-1][0] == "member_removed"
    assert logged[-1][1]["member_id"] == member_id
    assert logged[-1][2]["actor_member_id"] != member_id
    async with runtime.engine.connect() as conn:
        left = await conn.scalar(
            select(func.count())
            .select_from(dashboard_sessions)
            .where(dashboard_sessions.c.member_id == member_id)
        )
    assert left == 0
    assert "dev@example.com" not in (await client.get("/dashboard/team/")).text


async def test_a_role_change_holds_for_the_very_next_request(
    client: Client, app: Litestar, runtime: Runtime
) -> None:
    await sign_up(client)
    account_id = re.search(r"<code>(acct_[^<]+)</code>", (await client.get("/dashboard/account")).text).group(
        1
    )  # type: ignore[union-attr]
    member_id = await add_member(runtime, account_id, "dev@example.com", "developer")
    async with AsyncExitStack() as stack:
        dev = await signed_in(stack, app, "dev@example.com")
        assert (await dev.get("/dashboard/keys/new")).status_code == 200
        changed = await submit(
            client, "/dashboard/team/", f"/dashboard/team/members/{member_id}/role", {"role": "auditor"}
        )
        assert changed.status_code == 303
        refused = await dev.get("/dashboard/keys/new")
        assert refused.status_code == 403
        assert "Your role (auditor)" in refused.text
        listing = await dev.get("/dashboard/keys/")
        assert "Generate new key" not in listing.text  # an auditor is not offered what they cannot do
    logged = await _logged(runtime)
    assert logged[-1][0] == "member_role_changed"
    assert logged[-1][1] == {
        "type": "member_role_changed",
        "member_id": member_id,
        "account_id": account_id,
        "role": "auditor",
        "previous_role": "developer",
    }


async def test_the_last_owner_is_neither_removed_nor_demoted(client: Client, runtime: Runtime) -> None:
    await sign_up(client)
    page = (await client.get("/dashboard/team/")).text
    owner_id = re.search(r"/dashboard/team/members/(mem_[^/]+)/role", page).group(1)  # type: ignore[union-attr]
    before = await event_count(runtime)
    demoted = await submit(
        client, "/dashboard/team/", f"/dashboard/team/members/{owner_id}/role", {"role": "auditor"}
    )
    assert demoted.status_code == 409
    assert "last owner" in demoted.text
    removed = await submit(client, "/dashboard/team/", f"/dashboard/team/members/{owner_id}/remove", {})
    assert removed.status_code == 409
    bad_role = await submit(
        client, "/dashboard/team/", f"/dashboard/team/members/{owner_id}/role", {"role": "root"}
    )
    assert bad_role.status_code == 422
    assert await event_count(runtime) == before
    assert (await client.get("/dashboard/keys/")).status_code == 200  # still signed in, still owner


async def test_a_member_the_log_says_is_removed_is_signed_out_even_if_their_session_survived(
    client: Client, app: Litestar, runtime: Runtime
) -> None:
    """A removal that stopped between the event and deleting the sessions (a crash) still signs out."""
    await sign_up(client)
    account_id = re.search(r"<code>(acct_[^<]+)</code>", (await client.get("/dashboard/account")).text).group(
        1
    )  # type: ignore[union-attr]
    member_id = await add_member(runtime, account_id, "dev@example.com", "developer")
    async with AsyncExitStack() as stack:
        dev = await signed_in(stack, app, "dev@example.com")
        member = await runtime.application.member(member_id)
        removed = MemberRemoved(member_id=member_id, account_id=account_id, email="dev@example.com")
        await runtime.store.append(
            [StreamWrite(member_id, member.version, [removed])], Metadata(source="cli")
        )
        assert (await dev.get("/dashboard/keys/")).headers["location"] == "/dashboard/signin?expired=true"
        again = await submit(
            dev, "/dashboard/signin", "/dashboard/signin", {"email": "dev@example.com", "password": PASSWORD}
        )
        assert again.status_code == 401
