"""The Webhooks pages and the operators' All accounts page over HTTP, on both backends.

Deliveries go to a real receiver on loopback started by the test; each page action is the same
operation as the API's, recorded with the member as actor.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import select

from reservekit.domain.events import Metadata
from reservekit.events.tables import events
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.usecases.commands import OpenAccount
from tests.conftest import TEST_PEPPER
from tests.web.conftest import Client, event_count
from tests.web.dashboard_helpers import csrf_of, sign_up, submit
from tests.web.team_helpers import add_member
from tests.webhooks.receiver import Receiver

WHSEC = re.compile(r'id="secret"[^>]*value="(whsec_[^"]+)"')


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        key_pepper=TEST_PEPPER,
        poll_interval_seconds=0.05,
        webhooks_allow_loopback=True,
        webhooks_timeout_seconds=5.0,  # generous: a loaded machine must not turn the 500 into a timeout
        webhooks_backoff_base_seconds=0.05,
        webhooks_backoff_max_seconds=0.2,
    )


@pytest.fixture
async def receiver() -> Receiver:
    started = await Receiver().start()
    yield started  # type: ignore[misc]
    await started.close()


async def _types(runtime: Runtime) -> list[str]:
    async with runtime.engine.connect() as conn:
        return [r.type for r in await conn.execute(select(events.c.type).order_by(events.c.position))]


async def _eventually(client: Client, path: str, text: str) -> str:
    for _ in range(600):  # up to ~30 s of polling on a loaded machine
        page = (await client.get(path)).text
        if text in page:
            return page
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared on {path}")


async def test_an_owner_manages_an_endpoint_and_sees_each_delivery_attempt(
    client: Client, runtime: Runtime, receiver: Receiver
) -> None:
    await sign_up(client)
    receiver.answer = lambda _r: 500  # the first attempt fails, then the receiver recovers
    created = await submit(
        client,
        "/dashboard/webhooks/new",
        "/dashboard/webhooks/",
        {"url": receiver.url, "event_types": ["key.created", "key.revoked"], "min_flag_severity": "low"},
    )
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    secret = WHSEC.search(created.text).group(1)  # type: ignore[union-attr]
    endpoint_id = re.search(r"/dashboard/webhooks/(whe_[A-Za-z0-9]+)", created.text).group(1)  # type: ignore[union-attr]
    listing = (await client.get("/dashboard/webhooks/")).text
    assert receiver.url in listing
    assert secret not in listing
    page = f"/dashboard/webhooks/{endpoint_id}"
    assert secret not in (await client.get(page)).text

    sent = await submit(client, page, f"{page}/test", {})
    assert sent.status_code == 303
    await receiver.wait_for(1)
    receiver.answer = lambda _r: 204
    shown = await _eventually(client, page, "HTTP 500")
    assert "webhook.test" in shown
    assert "http_error" in shown
    assert re.search(r"HTTP 500 · \d+ ms", shown)
    shown = await _eventually(client, page, "HTTP 204")
    assert "badge-succeeded" in shown
    delivery_id = re.search(r"/deliveries/(msg_[a-z0-9]+)/retry", shown).group(1)  # type: ignore[union-attr]
    retried = await submit(client, page, f"{page}/deliveries/{delivery_id}/retry", {})
    assert retried.status_code == 303
    await receiver.wait_for(3)

    disabled = await submit(client, page, f"{page}/enabled", {"enabled": "false"})
    assert disabled.status_code == 303
    assert "badge-disabled" in (await client.get(page)).text
    await submit(client, page, f"{page}/enabled", {"enabled": "true"})
    rolled = await submit(client, page, f"{page}/roll-secret", {})
    assert rolled.status_code == 201
    new_secret = WHSEC.search(rolled.text).group(1)  # type: ignore[union-attr]
    assert new_secret != secret
    deleted = await submit(client, f"{page}/delete", f"{page}/delete", {})
    assert deleted.status_code == 303
    assert (await client.get(page)).status_code == 404
    types = await _types(runtime)
    assert types[-5:] == [
        "webhook_endpoint_created",
        "webhook_endpoint_updated",
        "webhook_endpoint_updated",
        "webhook_endpoint_secret_rolled",
        "webhook_endpoint_deleted",
    ]
    async with runtime.engine.connect() as conn:
        meta = (await conn.execute(select(events.c.metadata).order_by(events.c.position.desc()))).first()
    assert msgspec.json.decode(meta.metadata)["actor_member_id"].startswith("mem_")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "https://10.0.0.7/hooks", "event_types": ["key.created"]}, "url"),
        ({"url": "ftp://example.com/", "event_types": ["key.created"]}, "url"),
        ({"url": "https://127.0.0.1/", "event_types": []}, "event_types"),
        ({"url": "https://127.0.0.1/", "event_types": ["key.nope"]}, "event_types"),
    ],
)
async def test_a_bad_endpoint_is_refused_naming_the_field_and_writes_nothing(
    client: Client, runtime: Runtime, fields: dict[str, object], field: str
) -> None:
    await sign_up(client)
    before = await event_count(runtime)
    response = await submit(client, "/dashboard/webhooks/new", "/dashboard/webhooks/", fields)  # type: ignore[arg-type]
    assert response.status_code == 422
    assert "whsec_" not in response.text
    assert 'role="alert"' in response.text
    if field == "url":
        assert 'id="url-error"' in response.text
    assert await event_count(runtime) == before


async def _operator_owner(client: Client, runtime: Runtime) -> None:
    opened = await runtime.application.execute(OpenAccount(name="Ops", operator=True), Metadata(source="cli"))
    await add_member(runtime, opened.account.account_id, "ops@example.com", "owner")
    await runtime.refresh_projections()
    response = await submit(
        client,
        "/dashboard/signin",
        "/dashboard/signin",
        {"email": "ops@example.com", "password": "correct horse battery staple"},
    )
    assert response.status_code == 303


async def test_an_operator_pages_through_every_account_and_changes_a_plan(
    client: Client, runtime: Runtime, app: Litestar
) -> None:
    for n in range(55):
        await runtime.application.execute(OpenAccount(name=f"Tenant {n:02d}"), Metadata(source="cli"))
    await _operator_owner(client, runtime)
    first = await client.get("/dashboard/operator/accounts")
    assert first.status_code == 200
    ids = re.findall(r"<td data-label=\"Id\"><code>(acct_[^<]+)</code>", first.text)
    assert len(ids) == 50
    assert ids == sorted(ids)
    cursor = re.search(r"\?cursor=([A-Za-z0-9_-]+)\"", first.text).group(1)  # type: ignore[union-attr]
    second = await client.get(f"/dashboard/operator/accounts?cursor={cursor}")
    rest = re.findall(r"<td data-label=\"Id\"><code>(acct_[^<]+)</code>", second.text)
    assert len(rest) == 6  # 55 tenants and the operator's own account
    assert not set(ids) & set(rest)
    target = ids[0]
    changed = await client.post(
        f"/dashboard/operator/accounts/{target}/plan",
        data={"_csrf_token": csrf_of(first.text), "plan": "pro"},
    )
    assert changed.headers["location"] == f"/dashboard/operator/accounts?changed={target}"
    assert (await runtime.application.account(target)).plan == "pro"
    assert (await _types(runtime))[-1] == "account_plan_changed"
    before = await event_count(runtime)
    bad = await client.post(
        f"/dashboard/operator/accounts/{target}/plan",
        data={"_csrf_token": csrf_of(first.text), "plan": "platinum"},
    )
    assert bad.status_code == 400
    assert "unknown plan" in bad.text
    assert await event_count(runtime) == before
