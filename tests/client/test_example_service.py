"""docs/examples/protected_service.py runs as documented against a real authority."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import httpx
from asgi_lifespan import LifespanManager

from reservekit_client import AsyncReserveKitClient
from tests.client.conftest import REDIS_URL, LiveAuthority, Operator, first_refusal

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "protected_service.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("protected_service", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # Litestar resolves the handlers' annotations through it
    spec.loader.exec_module(module)
    return module


async def test_the_example_service_takes_keys_and_refuses_revoked_ones(
    authority: LiveAuthority, operator: Operator
) -> None:
    async with AsyncReserveKitClient(authority.url, operator.secret) as ops:
        opened = await ops.open_account("Acme")
    async with AsyncReserveKitClient(authority.url, opened.key.secret) as owner:
        service_key = await owner.create_key(name="orders", scopes=["keys:verify"])
        app = load_example().build(authority.url, service_key.secret, REDIS_URL)
        user = {"Authorization": f"Bearer {opened.key.secret}"}
        async with LifespanManager(app):
            assert await app.follower.wait_healthy(10)
            transport = httpx.ASGITransport(app=app, client=("192.0.2.9", 1))
            async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
                ok = await client.get("/orders", headers=user)
                assert ok.json() == {"account_id": opened.account.id, "key_id": opened.key.id, "orders": []}
                missing = await client.get("/orders")
                assert (missing.status_code, missing.json()["code"]) == (401, "authorization_missing")
                await owner.revoke_key(opened.key.id)
                refused = await first_refusal(lambda: client.get("/orders", headers=user))
                assert (refused.status_code, refused.json()["title"]) == (401, "API key revoked")
