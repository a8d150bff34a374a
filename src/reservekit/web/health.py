"""Liveness and readiness: open to everyone, no key needed."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get, head
from litestar.di import NamedDependency

from reservekit.background import LinkStatus
from reservekit.db import DatabaseUnavailable, read_transaction
from reservekit.events.store import head_position_in
from reservekit.metrics import CONTENT_TYPE
from reservekit.projecting.runner import ProjectionStatus, projection_status
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
    wakeup_link: LinkStatus | None = None


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


class Operations:
    """What /readyz and /metrics report on: the replica's database, projections, key view and counters.

    These two routes describe the running replica itself, so they read its runtime; no other route does.
    """

    __slots__ = ("_runtime",)

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def log_head(self) -> int:
        """The last position in the log (also proves the database answers)."""
        async with read_transaction(self._runtime.engine) as conn:
            return await head_position_in(conn)

    async def projection_status(self) -> list[ProjectionStatus]:
        return await projection_status(self._runtime.engine, self._runtime.runner.projections)

    def key_view_health(self, log_head: int) -> KeyViewHealth:
        return key_view_health(self._runtime, log_head)

    @property
    def key_view_position(self) -> int:
        return self._runtime.key_view.position

    def wakeup_link(self) -> LinkStatus:
        return self._runtime.wakeup.link_status()

    def render_metrics(self, statuses: list[ProjectionStatus], log_head: int) -> bytes:
        return self._runtime.metrics.render(statuses, log_head)


def with_wakeup_link(readiness: Readiness, link: LinkStatus) -> Readiness:
    """Add the LISTEN link's state (issue 10): a replica whose link is down still serves, polling fast."""
    return msgspec.structs.replace(readiness, wakeup_link=link)


class HealthController(Controller):
    tags = ["operations"]

    @get("/healthz", opt=PUBLIC, summary="Liveness: the process answers")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @head("/healthz", opt=PUBLIC, summary="Liveness, headers only (load balancers probe with HEAD)")
    async def healthz_head(self) -> None:
        return None

    @get(
        "/readyz",
        opt=PUBLIC,
        summary="Readiness: database reachable, projections and the key view caught up with the log",
    )
    async def readyz(self, ops: NamedDependency[Operations]) -> Response[Readiness]:
        try:
            log_head = await ops.log_head()
            statuses = await ops.projection_status()
        except (DatabaseUnavailable, OSError):
            unavailable = with_wakeup_link(Readiness("unavailable", "unreachable", []), ops.wakeup_link())
            return Response(unavailable, status_code=503)
        lags = [ProjectionLag(s.name, s.checkpoint, s.head, s.lag) for s in statuses]
        view = ops.key_view_health(log_head)
        ready = (
            all(lag.lag <= MAX_READY_LAG for lag in lags)
            and view.lag <= MAX_READY_LAG
            and view.last_check_ok is not False
        )
        readiness = Readiness("ready" if ready else "catching_up", "ok", lags, view)
        return Response(with_wakeup_link(readiness, ops.wakeup_link()), status_code=200 if ready else 503)

    @get("/metrics", opt=PUBLIC, summary="Prometheus metrics", media_type=CONTENT_TYPE)
    async def metrics(self, ops: NamedDependency[Operations]) -> Response[bytes]:
        try:
            log_head = await ops.log_head()
            statuses = await ops.projection_status()
        except (DatabaseUnavailable, OSError):
            statuses, log_head = [], ops.key_view_position
        return Response(ops.render_metrics(statuses, log_head), media_type=CONTENT_TYPE)
