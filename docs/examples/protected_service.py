"""A separate service whose routes take ReserveKit keys, checked by ``ReserveKitMiddleware``.

Run it next to a running authority (``reservekit serve`` on port 8000):

    # a service key: any key with keys:write can issue one for its own account
    curl -s -X POST http://127.0.0.1:8000/v1/api-keys -H "Authorization: Bearer $OWNER_KEY" \\
         -H 'content-type: application/json' -d '{"name": "orders", "scopes": ["keys:verify"]}'
    export RESERVEKIT_URL=http://127.0.0.1:8000 RESERVEKIT_SERVICE_KEY=sk_rsv_...   # its secret
    export RESERVEKIT_REDIS_URL=redis://127.0.0.1:6379/0   # optional: the authority's Redis
    cd docs/examples && ../../.venv/bin/granian --interface asgi --port 8001 protected_service:app

    curl -s http://127.0.0.1:8001/orders -H "Authorization: Bearer $OWNER_KEY"   # 200
    curl -s http://127.0.0.1:8001/orders                                         # 401 problem+json
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Litestar, Request, get

from reservekit.ratelimit import RateLimiter, RedisRateLimiter
from reservekit_client import AsyncReserveKitClient
from reservekit_client.middleware import ReserveKitMiddleware, VerifiedKey


@get("/orders")
async def list_orders(request: Request[Any, Any, Any]) -> dict[str, object]:
    caller: VerifiedKey = request.scope["state"]["reservekit_key"]
    return {"account_id": caller.account_id, "key_id": caller.key_id, "orders": []}


def build(authority_url: str, service_key: str, redis_url: str | None = None, **options: Any) -> Any:
    limiter: RateLimiter | None = None
    if redis_url:
        from redis.asyncio import Redis

        limiter = RedisRateLimiter(Redis.from_url(redis_url))
    return ReserveKitMiddleware(
        Litestar(route_handlers=[list_orders]),
        authority=AsyncReserveKitClient(authority_url, service_key),
        required_scopes={"services:read"},
        limiter=limiter,
        **options,
    )


if "RESERVEKIT_SERVICE_KEY" in os.environ:
    app = build(
        os.environ.get("RESERVEKIT_URL", "http://127.0.0.1:8000"),
        os.environ["RESERVEKIT_SERVICE_KEY"],
        os.environ.get("RESERVEKIT_REDIS_URL"),
    )
