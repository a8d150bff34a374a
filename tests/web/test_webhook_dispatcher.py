"""The dispatcher under faults (both backends): a crash mid-delivery, two replicas racing, DNS that
turns private after an endpoint was saved, and an endpoint disabled after a day of failures.

These tests stop the app's own dispatcher and drive dispatchers of their own, so each step is exact.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import select
from standardwebhooks import Webhook

from reservekit.clock import FakeClock
from reservekit.domain.events import Metadata
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.web.app import create_app
from reservekit.webhooks import dispatcher as dispatch_module
from reservekit.webhooks import fanout
from reservekit.webhooks.dispatcher import DispatchConfig, Dispatcher
from reservekit.webhooks.endpoints import create_endpoint
from reservekit.webhooks.tables import webhook_deliveries
from tests.conftest import TEST_PEPPER
from tests.web.conftest import Caller, Client, create_key, make_account, serving
from tests.web.test_flags_and_leaks import seed, used
from tests.webhooks.receiver import Receiver
from tests.writes import create_key as create_key_directly
from tests.writes import open_account

FAST = DispatchConfig(timeout_seconds=0.5, backoff_base_seconds=0.01, backoff_max_seconds=0.02)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        key_pepper=TEST_PEPPER,
        poll_interval_seconds=0.05,
        webhooks_allow_loopback=True,
    )


@pytest.fixture
async def receiver() -> Receiver:
    started = await Receiver().start()
    yield started  # type: ignore[misc]
    await started.close()


@pytest.fixture
async def quiet(runtime: Runtime) -> Runtime:
    """The app with its background dispatcher stopped: the test's dispatchers do all the sending."""
    await runtime.dispatcher.stop()
    return runtime


def reconfigure(app: Litestar, runtime: Runtime, **changes: object) -> None:
    """Change the webhook policy for the API (app state) and for the test's dispatchers (runtime)."""
    runtime.webhooks = dataclasses.replace(runtime.webhooks, **changes)  # type: ignore[arg-type]
    app.state.webhooks = runtime.webhooks


def dispatcher(runtime: Runtime, config: DispatchConfig = FAST, **kw: object) -> Dispatcher:
    return Dispatcher(runtime.engine, runtime.webhooks, config, runtime.wakeup, **kw)  # type: ignore[arg-type]


async def subscribe(client: Client, caller: Caller, url: str) -> dict[str, object]:
    response = await client.post(
        "/v1/webhook-endpoints", json={"url": url, "event_types": ["key.created"]}, headers=caller.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def statuses(runtime: Runtime) -> list[tuple[str, int]]:
    d = webhook_deliveries
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(select(d.c.status, d.c.attempts).order_by(d.c.seq))
        return [(row.status, int(row.attempts)) for row in rows]


async def test_a_delivery_cut_off_by_a_crash_arrives_after_restart_with_the_same_id(
    client: Client, acme: Caller, quiet: Runtime, receiver: Receiver
) -> None:
    answers = iter(["hang", 200])
    receiver.answer = lambda _r: next(answers)
    endpoint = await subscribe(client, acme, receiver.url)
    await create_key(client, acme, name="survives a crash")
    crashed = dispatcher(quiet, dataclasses.replace(FAST, timeout_seconds=30, lease_margin_seconds=0))
    crashed.start()
    [first] = await receiver.wait_for(1)
    await asyncio.sleep(0.05)
    assert crashed._task is not None
    crashed._task.cancel()  # the replica dies mid-delivery: no result recorded, the lease stays
    with pytest.raises(asyncio.CancelledError):
        await crashed._task
    assert await statuses(quiet) == [("pending", 1)]
    restarted = dispatcher(quiet, dataclasses.replace(FAST, lease_margin_seconds=0))
    async with httpx.AsyncClient() as http:
        assert await restarted.run_once(http) == 0  # the dead replica's lease has not lapsed yet
    # The crashed attempt's lease was 30 s: a replica whose clock is 31 s later sees it lapsed.
    later = FakeClock(datetime.now(UTC))
    later.advance(31)
    after = dispatcher(quiet, FAST, clock=later)
    async with httpx.AsyncClient() as http:
        assert await after.run_once(http) == 1
    requests = await receiver.wait_for(2)
    assert requests[1].headers["webhook-id"] == first.headers["webhook-id"]
    Webhook(str(endpoint["secret"])).verify(requests[1].body, requests[1].headers)
    assert await statuses(quiet) == [("succeeded", 2)]
    async with httpx.AsyncClient() as http:
        assert await after.run_once(http) == 0  # nothing is sent a third time
    assert len(receiver.requests) == 2


async def test_two_replicas_never_send_one_delivery_twice(
    client: Client, acme: Caller, quiet: Runtime, receiver: Receiver
) -> None:
    await subscribe(client, acme, receiver.url)
    for n in range(5):
        await create_key(client, acme, name=f"k{n}")
    replicas = [dispatcher(quiet), dispatcher(quiet)]
    async with httpx.AsyncClient() as http:
        for _ in range(10):
            await asyncio.gather(*(replica.run_once(http) for replica in replicas))
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 5
    assert len(set(ids)) == 5
    assert await statuses(quiet) == [("succeeded", 1)] * 5


async def test_a_host_that_turns_private_after_saving_is_refused_at_delivery(
    client: Client, acme: Caller, quiet: Runtime, app: Litestar
) -> None:
    answers: list[Sequence[str]] = [["93.184.216.34"]]

    async def rebinding(_host: str, _port: int) -> Sequence[str]:
        return answers[-1]

    reconfigure(app, quiet, resolver=rebinding, allow_loopback=False)
    endpoint = await subscribe(client, acme, "https://hooks.example.test/in")
    answers.append(["10.0.0.5"])  # DNS rebinding: the name now points inside the network
    await create_key(client, acme, name="rebind")
    async with httpx.AsyncClient() as http:
        assert await dispatcher(quiet).run_once(http) == 1
    page = (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=acme.headers)
    ).json()
    [attempt] = page["data"][0]["attempt_log"]
    assert attempt["outcome"] == "refused"
    assert "10.0.0.5" in attempt["error"]


async def test_saving_a_host_that_resolves_to_a_private_address_is_refused(
    client: Client, acme: Caller, quiet: Runtime, app: Litestar
) -> None:
    async def private(_host: str, _port: int) -> Sequence[str]:
        return ["93.184.216.34", "192.168.1.20"]

    reconfigure(app, quiet, resolver=private, allow_loopback=False)
    response = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://intranet.example.test/", "event_types": ["key.created"]},
        headers=acme.headers,
    )
    assert response.status_code == 422
    assert response.json()["field"] == "url"
    assert "192.168.1.20" in response.json()["detail"]


async def test_an_endpoint_failing_for_a_day_is_disabled_with_an_event_and_a_flag(
    client: Client, acme: Caller, quiet: Runtime, receiver: Receiver
) -> None:
    receiver.answer = lambda _r: 503
    endpoint = await subscribe(client, acme, receiver.url)
    await create_key(client, acme, name="never delivered")
    clock = FakeClock(datetime.now(UTC))
    config = dataclasses.replace(FAST, backoff_base_seconds=600, backoff_max_seconds=3600)
    sender = dispatcher(quiet, config, clock=clock)
    url = f"/v1/webhook-endpoints/{endpoint['id']}"
    async with httpx.AsyncClient() as http:
        for attempt in range(1, 40):
            assert await sender.run_once(http) == 1
            state = (await client.get(url, headers=acme.headers)).json()
            if not state["enabled"]:
                break
            assert state["status"] == ("failing" if attempt >= config.failing_after_errors else "enabled")
            clock.advance(3601)
    await quiet.refresh_projections()
    state = (await client.get(url, headers=acme.headers)).json()
    assert state["status"] == "disabled"
    assert "failed" in state["disabled_reason"]
    assert attempt >= 24  # not before a day of failures
    flags = (await client.get("/v1/audit/flags", headers=acme.headers)).json()["data"]
    assert [f["rule"] for f in flags] == ["webhook_endpoint_disabled"]
    assert flags[0]["evidence"]["endpoint_id"] == endpoint["id"]
    async with httpx.AsyncClient() as http:
        clock.advance(3601)
        assert await sender.run_once(http) == 0  # a disabled endpoint gets nothing
    enabled = await client.patch(url, json={"enabled": True}, headers=acme.headers)
    assert enabled.json()["status"] == "enabled"  # re-enabled with a fresh failure count
    assert enabled.json()["consecutive_failures"] == 0
    assert enabled.json()["disabled_reason"] is None


async def test_a_flag_raised_right_after_start_is_not_taken_for_the_baseline(
    settings: Settings, receiver: Receiver
) -> None:
    replica = Runtime.build(settings)
    await replica.start()
    await replica.dispatcher.stop()  # its loop never ran a pass: only start() itself fanned out
    try:
        account, _ = await open_account(replica, name="Acme", plan="free", metadata=Metadata(source="cli"))
        created = await create_endpoint(
            replica.webhooks,
            account_id=account.account_id,
            url=receiver.url,
            event_types=["flag.raised"],
            metadata=Metadata(source="cli"),
        )
        issued = await create_key_directly(
            replica, account_id=account.account_id, metadata=Metadata(source="cli")
        )
        await replica.refresh_projections()
        doomed = Caller(account.account_id, issued.key.key_id, issued.secret)
        await seed(replica, used(replica, doomed, "revoked"))
        async with httpx.AsyncClient() as http:
            assert await dispatcher(replica).run_once(http) == 1
        [request] = receiver.requests
        body = Webhook(created.secret).verify(request.body, request.headers)
        assert body["data"]["rule"] == "revoked_key_used"
    finally:
        await replica.stop()


async def test_an_idle_pass_takes_no_write_lock(
    client: Client, acme: Caller, quiet: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url, "event_types": ["key.created"]},
        headers=acme.headers,
    )
    sender = dispatcher(quiet)
    async with httpx.AsyncClient() as http:
        await sender.run_once(http)  # whatever is pending from setup
        writes: list[object] = []
        real = fanout.write_transaction

        def counting(engine: object) -> object:
            writes.append(engine)
            return real(engine)  # type: ignore[arg-type]

        monkeypatch.setattr(fanout, "write_transaction", counting)
        monkeypatch.setattr(dispatch_module, "write_transaction", counting)
        for _ in range(3):
            assert await sender.run_once(http) == 0
        assert writes == []
        await create_key(client, acme, name="work again")
        assert await sender.run_once(http) == 1
        assert writes


async def test_an_endpoint_gets_only_events_after_its_creation_and_deleting_it_cancels_the_queue(
    client: Client, acme: Caller, quiet: Runtime, receiver: Receiver
) -> None:
    await create_key(client, acme, name="before the endpoint")
    endpoint = await subscribe(client, acme, receiver.url)
    sender = dispatcher(quiet)
    await sender.materialise_all()
    assert await statuses(quiet) == []
    await create_key(client, acme, name="after the endpoint")
    await sender.materialise_all()
    assert await statuses(quiet) == [("pending", 0)]
    deleted = await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=acme.headers)
    assert deleted.status_code == 204
    async with httpx.AsyncClient() as http:
        assert await sender.run_once(http) == 0
    assert await statuses(quiet) == [("cancelled", 0)]
    assert receiver.requests == []


async def test_a_write_wakes_the_dispatcher_without_waiting_for_a_poll(
    settings: Settings, receiver: Receiver
) -> None:
    slow = msgspec.structs.replace(settings, poll_interval_seconds=5.0)
    app = create_app(slow, clock=FakeClock(datetime(2026, 6, 1, tzinfo=UTC)))
    async with serving(app) as client:
        runtime: Runtime = app.state.runtime
        runtime.usage._on_written = None  # only the write itself may wake the dispatcher
        caller = await make_account(runtime)
        await subscribe(client, caller, receiver.url)
        await asyncio.sleep(0.2)  # the dispatcher is now waiting out its 5 s poll
        loop = asyncio.get_running_loop()
        started = loop.time()
        await create_key(client, caller, name="prompt")
        await receiver.wait_for(1, within=4)
        assert loop.time() - started < 2
