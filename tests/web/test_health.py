"""Open endpoints: liveness, readiness with projection lag, and the OpenAPI 3.1 document."""

from __future__ import annotations

from reservekit.db import create_engine
from reservekit.settings import Settings
from reservekit.web.app import create_app
from tests.web.conftest import serving


async def test_health_readiness_and_schema_need_no_key(settings: Settings) -> None:
    async with serving(create_app(settings)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["database"] == "ok"
        assert {p["name"] for p in ready.json()["projections"]} >= {"accounts", "api_keys"}
        schema = await client.get("/schema")
        assert schema.status_code == 200
        assert schema.json()["openapi"].startswith("3.1")
        assert schema.json()["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_readiness_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    app = create_app(settings)
    async with serving(app) as client:
        runtime = app.state.runtime
        healthy_engine = runtime.engine
        runtime.engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
        try:
            response = await client.get("/readyz")
        finally:
            await runtime.engine.dispose()
            runtime.engine = healthy_engine
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
