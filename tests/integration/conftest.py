"""Two replicas on the test's database, started without background tasks, for forced interleavings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reservekit.auth.authenticator import AuthResult
from reservekit.runtime import Runtime
from reservekit.settings import Settings


@pytest.fixture
async def replicas(settings: Settings) -> AsyncIterator[tuple[Runtime, Runtime]]:
    a, b = Runtime.build(settings), Runtime.build(settings)
    await a.start(background=False)
    await b.start(background=False)
    yield a, b
    await a.stop()
    await b.stop()


async def authenticate(runtime: Runtime, secret: str) -> AuthResult:
    """What the middleware asks for a request with this key and no origin, scope or other header."""
    return await runtime.authenticator.authenticate(
        authorization=f"Bearer {secret}",
        origin_host=None,
        required_scopes=None,
        client_ip="203.0.113.7",
    )
