"""The yardstick: a Litestar app with one route and no project code at all (issue 14's "bare route").

Served by the benchmarks with Granian exactly like ``reservekit serve`` (1 worker, ASGI):
``granian --interface asgi --factory bare_app:create_app``. ``create_post_app`` adds the floor for a
route that reads a request body (``bench_post_floor.py``): a Litestar ``POST`` and a raw ASGI one.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, get, post


@get("/", sync_to_thread=False)
def bare() -> dict[str, bool]:
    return {"ok": True}


def create_app() -> Litestar:
    return Litestar(route_handlers=[bare], openapi_config=None)


@post("/post", status_code=200)
async def bare_post(request: Request[Any, Any, Any]) -> dict[str, bool]:
    await request.body()
    return {"ok": True}


async def _raw_post(receive: Any, send: Any) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": b'{"ok":true}'})


def create_post_app() -> Any:
    """``GET /`` and ``POST /post`` through Litestar, ``POST /raw`` answered before Litestar."""
    app = Litestar(route_handlers=[bare, bare_post], openapi_config=None)

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/raw":
            await _raw_post(receive, send)
            return
        await app(scope, receive, send)

    return outer
