"""Liveness and readiness: open to everyone, no key needed."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency

from reservekit.db import DatabaseUnavailable, read_transaction
from reservekit.events.store import head_position_in
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


class KeyViewHealth(msgspec.Struct):
    """This replica's in-memory key view against the log (see docs/operations.md, "Key view self-check")."""

    position: int
    log_head: int
    lag: int
    mismatches: int
    heals: int
    last_check_at: float | None
    last_check_ok: bool | None


class Readiness(msgspec.Struct):
    status: str
    database: str
    projections: list[ProjectionLag]
    key_view: KeyViewHealth | None = None


def key_view_health(runtime: Runtime, log_head: int) -> KeyViewHealth:
    view, checker = runtime.key_view, runtime.key_view_checker
    last = checker.last
    return KeyViewHealth(
        position=view.position,
        log_head=log_head,
        lag=max(0, log_head - view.position),
        mismatches=view.mismatches
        + checker.cursor_mismatches
        + checker.keys_mismatched
        + checker.plans_mismatched,
        heals=view.heals,
        last_check_at=last.checked_at if last else None,
        last_check_ok=last.ok if last else None,
    )


class HealthController(Controller):
    tags = ["operations"]

    @get("/healthz", opt=PUBLIC, summary="Liveness: the process answers")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/readyz",
        opt=PUBLIC,
        summary="Readiness: database reachable, projections and the key view caught up with the log",
    )
    async def readyz(self, runtime: NamedDependency[Runtime]) -> Response[Readiness]:
        try:
            async with read_transaction(runtime.engine) as conn:
                log_head = await head_position_in(conn)
            statuses = await projection_status(runtime.engine, runtime.runner.projections)
        except (DatabaseUnavailable, OSError):
            return Response(Readiness("unavailable", "unreachable", []), status_code=503)
        lags = [ProjectionLag(s.name, s.checkpoint, s.head, s.lag) for s in statuses]
        view = key_view_health(runtime, log_head)
        ready = (
            all(lag.lag <= MAX_READY_LAG for lag in lags)
            and view.lag <= MAX_READY_LAG
            and view.last_check_ok is not False
        )
        return Response(
            Readiness("ready" if ready else "catching_up", "ok", lags, view),
            status_code=200 if ready else 503,
        )

    @get("/metrics", opt=PUBLIC, summary="Prometheus metrics", media_type=CONTENT_TYPE)
    async def metrics(self, runtime: NamedDependency[Runtime]) -> Response[bytes]:
        try:
            async with read_transaction(runtime.engine) as conn:
                log_head = await head_position_in(conn)
            statuses = await projection_status(runtime.engine, runtime.runner.projections)
        except (DatabaseUnavailable, OSError):
            statuses, log_head = [], runtime.key_view.position
        return Response(runtime.metrics.render(statuses, log_head), media_type=CONTENT_TYPE)
