"""The yardstick: a Litestar app with one route and no project code at all (issue 14's "bare route").

Served by the benchmarks with Granian exactly like ``reservekit serve`` (1 worker, ASGI):
``granian --interface asgi --factory bare_app:create_app``.
"""

from __future__ import annotations

from litestar import Litestar, get


@get("/", sync_to_thread=False)
def bare() -> dict[str, bool]:
    return {"ok": True}


def create_app() -> Litestar:
    return Litestar(route_handlers=[bare], openapi_config=None)
