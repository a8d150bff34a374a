"""Every API request becomes exactly one usage row, refused ones included, also across a shutdown."""

from __future__ import annotations

from collections import Counter

import msgspec
from sqlalchemy import select

from reservekit.clock import FakeClock
from reservekit.keys.tokens import generate_secret
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.usage.records import usage_log
from reservekit.web.app import create_app
from tests.web.conftest import Caller, Client, create_key, make_account, serving


async def usage_rows(runtime_or_settings: Runtime | Settings) -> list[dict[str, object]]:
    from reservekit.db import create_engine

    if isinstance(runtime_or_settings, Runtime):
        engine, owned = runtime_or_settings.engine, False
    else:
        engine, owned = create_engine(runtime_or_settings.effective_database_url), True
    try:
        async with engine.connect() as conn:
            result = await conn.execute(select(usage_log).order_by(usage_log.c.position))
            return [dict(row._mapping) for row in result]
    finally:
        if owned:
            await engine.dispose()


async def test_each_outcome_is_recorded_once(settings: Settings, clock: FakeClock) -> None:
    limited = msgspec.structs.replace(settings, plans={"free": 8, "pro": 600, "enterprise": 6000})
    app = create_app(limited, clock=clock)
    async with serving(app, client_ip="198.51.100.20") as client:
        runtime: Runtime = app.state.runtime
        acme = await make_account(runtime)
        web = await create_key(client, acme, name="web", domains=["shop.example.com"], scopes=["keys:read"])
        doomed = await create_key(client, acme, name="doomed")
        await client.post(f"/v1/api-keys/{doomed.key_id}/revoke", headers=acme.headers)
        rotated = await create_key(client, acme, name="rotated")
        await client.post(f"/v1/api-keys/{rotated.key_id}/rotate", headers=acme.headers)
        await client.get("/v1/services")  # missing
        await client.get("/v1/services", headers={"Authorization": "Basic x"})  # malformed
        await client.get("/v1/services", headers={"Authorization": f"Bearer {generate_secret()}"})  # invalid
        await client.get("/v1/services", headers=doomed.headers)  # revoked
        await client.get("/v1/services", headers=rotated.headers)  # expired (rotated out)
        await client.get("/v1/services", headers={**web.headers, "Origin": "https://evil.test"})  # origin
        await client.get(
            "/v1/services", headers={**web.headers, "Origin": "https://shop.example.com"}
        )  # scope
        await client.get("/v1/api-keys/key_nope", headers=acme.headers)  # ok (authenticated), 404
        for _ in range(3):
            await client.get("/v1/services", headers=acme.headers)  # ok, ok, then rate limited
        await client.get("/healthz")  # public: not an API request
        await runtime.usage.flush()
        rows = await usage_rows(runtime)
    outcomes = Counter(str(r["outcome"]) for r in rows)
    assert outcomes == {
        "ok": 8,  # 5 key management calls above + the 404 + 2 services
        "missing": 1,
        "malformed": 1,
        "invalid": 1,
        "revoked": 1,
        "expired": 1,
        "origin_mismatch": 1,
        "scope_denied": 1,
        "rate_limited": 1,
    }
    by_outcome = {str(r["outcome"]): r for r in rows}
    assert by_outcome["expired"]["detail"] == "rotated_out"
    assert by_outcome["expired"]["key_id"] == rotated.key_id
    assert by_outcome["invalid"]["key_id"] is None
    assert by_outcome["origin_mismatch"]["origin"] == "evil.test"
    assert by_outcome["rate_limited"]["status"] == 429
    assert {r["client_ip"] for r in rows} == {"198.51.100.20"}
    assert [r["status"] for r in rows if r["route"] == "/v1/api-keys/{key_id}"] == [404]
    assert all(r["occurred_at_us"] == int(clock.timestamp() * 1_000_000) for r in rows)


async def test_a_graceful_shutdown_loses_no_usage_row(settings: Settings) -> None:
    app = create_app(msgspec.structs.replace(settings, poll_interval_seconds=60))
    async with serving(app) as client:
        acme: Caller = await make_account(app.state.runtime)
        for _ in range(37):
            await client.get("/v1/services", headers=acme.headers)
        for _ in range(5):
            await client.get("/v1/services")
    rows = await usage_rows(settings)
    assert len(rows) == 42


async def test_metrics_expose_outcomes_usage_and_projection_lag(
    client: Client, acme: Caller, runtime: Runtime
) -> None:
    await client.get("/v1/services", headers=acme.headers)
    await client.get("/v1/services")
    await runtime.usage.flush()
    response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'reservekit_requests_total{outcome="ok"} 1.0' in text
    assert 'reservekit_requests_total{outcome="missing"} 1.0' in text
    assert 'reservekit_rate_limit_decisions_total{decision="allowed",limit="account"} 1.0' in text
    assert "reservekit_usage_rows_written_total 2.0" in text
    assert "reservekit_usage_queue_depth 0.0" in text
    assert 'reservekit_projection_lag{projection="api_keys"} 0.0' in text
