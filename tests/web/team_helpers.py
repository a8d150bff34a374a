"""Members of each role, each with their own signed-in HTTP client on the same running app."""

from __future__ import annotations

from contextlib import AsyncExitStack

import httpx
from litestar import Litestar

from reservekit.domain.events import Metadata
from reservekit.runtime import Runtime
from reservekit.usecases.commands import AddMember
from tests.web.dashboard_helpers import PASSWORD, submit


async def signed_in(stack: AsyncExitStack, app: Litestar, email: str) -> httpx.AsyncClient:
    """A second browser on the app whose lifespan the test's ``client`` already runs."""
    transport = httpx.ASGITransport(app=app, client=("203.0.113.20", 50_000))
    client = await stack.enter_async_context(
        httpx.AsyncClient(transport=transport, base_url="http://testserver")
    )
    response = await submit(
        client, "/dashboard/signin", "/dashboard/signin", {"email": email, "password": PASSWORD}
    )
    assert response.status_code == 303, response.text
    return client


async def add_member(runtime: Runtime, account_id: str, email: str, role: str) -> str:
    command = AddMember(account_id=account_id, email=email, password=PASSWORD, role=role)
    member = await runtime.application.execute(command, Metadata(source="cli"))
    return member.member_id
