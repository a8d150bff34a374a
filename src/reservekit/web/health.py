"""Liveness and readiness: open to everyone, no key needed."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from sqlalchemy import text

from reservekit.db import DatabaseUnavailable, read_transaction
from reservekit.metrics import CONTENT_TYPE
from reservekit.projecting.runner import projection_status
from reservekit.runtime import Runtime
from reservekit.web.access import PUBLIC

MAX_READY_LAG = 1000


class ProjectionLag(msgspec.Struct):
    name: str
    checkpoint: int
    head: int
    lag: int


class Readiness(msgspec.Struct):
    status: str
    database: str
    projections: list[ProjectionLag]


class HealthController(Controller):
    tags = ["operations"]

    @get("/healthz", opt=PUBLIC, summary="Liveness: the process answers")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", opt=PUBLIC, summary="Readiness: database reachable and projections caught up")
    async def readyz(self, runtime: NamedDependency[Runtime]) -> Response[Readiness]:
        try:
            async with read_transaction(runtime.engine) as conn:
                await conn.execute(text("SELECT 1"))
            statuses = await projection_status(runtime.engine, runtime.runner.projections)
        except (DatabaseUnavailable, OSError):
            return Response(Readiness("unavailable", "unreachable", []), status_code=503)
        lags = [ProjectionLag(s.name, s.checkpoint, s.head, s.lag) for s in statuses]
        ready = all(lag.lag <= MAX_READY_LAG for lag in lags)
        return Response(
            Readiness("ready" if ready else "catching_up", "ok", lags), status_code=200 if ready else 503
        )

    @get("/metrics", opt=PUBLIC, summary="Prometheus metrics", media_type=CONTENT_TYPE)
    async def metrics(self, runtime: NamedDependency[Runtime]) -> Response[bytes]:
        try:
            statuses = await projection_status(runtime.engine, runtime.runner.projections)
        except (DatabaseUnavailable, OSError):
            statuses = []
        return Response(runtime.metrics.render(statuses), media_type=CONTENT_TYPE)
