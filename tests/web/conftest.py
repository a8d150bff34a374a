"""An app per test on the test's own database, a fake clock, and accounts made by the real use cases.

The app runs in the test's own event loop (httpx's ASGITransport, the real lifespan via asgi-lifespan),
unlike Litestar's test client, which runs it in a separate thread: fixtures and concurrent requests
then share one loop with the app's connection pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import msgspec
import pytest
from asgi_lifespan import LifespanManager
from litestar import Litestar
from sqlalchemy import func, select

from reservekit.clock import FakeClock
from reservekit.domain.events import Metadata
from reservekit.events.tables import events
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.usecases.commands import OpenAccount
from reservekit.web.app import create_app

Client = httpx.AsyncClient


@dataclass
class Caller:
    account_id: str
    key_id: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> Litestar:
    return create_app(settings, clock=clock)


@asynccontextmanager
async def serving(app: Litestar, client_ip: str = "203.0.113.10") -> AsyncIterator[Client]:
    """Start the app's lifespan and give a client whose socket peer is ``client_ip``."""
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app, client=(client_ip, 50_000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[Client]:
    async with serving(app) as test_client:
        yield test_client


@pytest.fixture
def runtime(app: Litestar, client: Client) -> Runtime:
    del client  # started by the client's lifespan
    value: Runtime = app.state.runtime
    return value


async def make_account(
    runtime: Runtime, name: str = "Acme", *, plan: str = "free", operator: bool = False
) -> Caller:
    command = OpenAccount(name=name, plan=plan, operator=operator)
    opened = await runtime.application.execute(command, Metadata(source="cli"))
    await runtime.refresh_projections()
    return Caller(opened.account.account_id, opened.first_key.key.key_id, opened.first_key.secret)


@pytest.fixture
async def acme(runtime: Runtime) -> Caller:
    return await make_account(runtime, "Acme")


@pytest.fixture
async def globex(runtime: Runtime) -> Caller:
    return await make_account(runtime, "Globex")


@pytest.fixture
async def operator(runtime: Runtime) -> Caller:
    return await make_account(runtime, "Ops", operator=True)


async def create_key(client: Client, caller: Caller, **body: object) -> Caller:
    response = await client.post("/v1/api-keys", json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    data = response.json()
    return Caller(caller.account_id, data["id"], data["secret"])


async def event_count(runtime: Runtime) -> int:
    async with runtime.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(events)) or 0)


def problem(response: object) -> dict[str, object]:
    body: dict[str, object] = msgspec.json.decode(response.content)  # type: ignore[attr-defined]
    return body
