"""Benchmark-only routes: a twin of ``GET /v1/services`` with authentication switched off, and a bare route.

Registered only when ``RESERVEKIT_BENCH_UNAUTHENTICATED_ACCOUNT`` is set, so the auth-overhead benchmark
can compare both routes on the same server in the same run. Never enable it in production.
"""

from __future__ import annotations

from litestar import Router, get
from litestar.di import NamedDependency

from reservekit import scheduling
from reservekit.scheduling import Service
from reservekit.web.access import PUBLIC, requires
from reservekit.web.deps import ApiCall
from reservekit.web.pagination import Page


def bench_router(account_id: str) -> Router:
    @get("/v1/services", opt=PUBLIC, include_in_schema=False)
    async def list_services_unauthenticated(call: NamedDependency[ApiCall]) -> Page[Service]:
        rows = await scheduling.list_services(call.engine, account_id, after=None, limit=51)
        return Page(data=rows[:50], next_cursor=rows[49].id if len(rows) > 50 else None)

    @get("/bare", opt=PUBLIC, include_in_schema=False)
    async def bare() -> dict[str, bool]:
        """The least a Litestar route can do, behind the same middleware: the verify benchmark's yardstick."""
        return {"ok": True}

    @get("/trivial", opt=requires("services:read"), include_in_schema=False)
    async def trivial() -> dict[str, bool]:
        """The bare route's body behind the key check, usage row and all: the hot path's cost alone."""
        return {"ok": True}

    return Router(path="/bench", route_handlers=[list_services_unauthenticated, bare, trivial])
