"""``POST /v1/leaks``: report a leaked key. No key needed; limited per client IP.

The answer is the same 202 body whether the key is malformed, unknown, active or already revoked, so
the endpoint cannot be used to test whether a key exists. A known key is revoked at once and flagged
critical (``leaked_key_reported``).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Response, Router, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from reservekit.domain.keys import MAX_LEAK_SOURCE_CHARS
from reservekit.usecases.commands import ReportLeak
from reservekit.web.access import public_with_ip_budget
from reservekit.web.deps import ApiCall

LEAK_REPORTS_PER_IP_PER_MINUTE = 10


class LeakReport(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    key: Annotated[str, msgspec.Meta(max_length=256)]
    source: Annotated[str, msgspec.Meta(max_length=MAX_LEAK_SOURCE_CHARS)] | None = None


class LeakReceipt(msgspec.Struct, kw_only=True):
    status: str = "received"
    detail: str = "Thank you. If this is a ReserveKit key, it has been revoked and its owner alerted."


def leaks_router(*, per_ip_per_minute: int = LEAK_REPORTS_PER_IP_PER_MINUTE) -> Router:
    """The per-IP budget is applied by the middleware (route opt), before the body is decoded."""

    @post(
        "/v1/leaks",
        opt=public_with_ip_budget(per_ip_per_minute),
        status_code=202,
        tags=["leaks"],
        summary="Report a leaked sk_rsv_ key",
    )
    async def report(data: JSONBody[LeakReport], call: NamedDependency[ApiCall]) -> Response[Any]:
        # Whether anything was written never reaches the reporter: one answer for every report.
        await call.application.execute(ReportLeak(secret=data.key, source=data.source), call.metadata)
        return Response(LeakReceipt(), status_code=202)

    return Router(path="/", route_handlers=[report])
