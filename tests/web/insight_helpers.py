"""Members with a role, usage rows for a key, and signing in: what the usage and security page tests share.

Roles other than ``owner`` are written as the ``member_added`` event itself plus its credential row, the
same two writes ``AddMember`` makes, so these tests do not wait for the team pages' invitations.
"""

from __future__ import annotations

import itertools
from datetime import datetime

import httpx

from reservekit.clock import to_micros
from reservekit.domain.events import MemberAdded, Metadata
from reservekit.ids import new_id
from reservekit.runtime import Runtime
from reservekit.usage.log import append_usage
from reservekit.usage.records import UsageRecord
from reservekit.usecases.ports import Credential, StreamWrite
from tests.web.dashboard_helpers import PASSWORD, submit

_ids = itertools.count()
STATUS = {"ok": 200, "rate_limited": 429, "scope_denied": 403, "origin_mismatch": 403}


async def add_member(runtime: Runtime, account_id: str, email: str, role: str) -> str:
    deps = runtime.application.deps
    assert deps.members is not None
    assert deps.passwords is not None
    member_id = new_id("mem")
    credential = Credential(member_id, account_id, await deps.passwords.hash(PASSWORD))
    assert await deps.members.claim_email(email, credential)
    added = MemberAdded(member_id=member_id, account_id=account_id, email=email, role=role)
    await deps.store.append([StreamWrite(member_id, 0, [added])], Metadata(source="cli"))
    return member_id


async def sign_in(client: httpx.AsyncClient, email: str) -> None:
    response = await submit(
        client, "/dashboard/signin", "/dashboard/signin", {"email": email, "password": PASSWORD}
    )
    assert response.status_code == 303, response.text


def usage_row(
    key_id: str | None,
    account_id: str,
    at: datetime,
    outcome: str = "ok",
    *,
    ip: str = "198.51.100.20",
    origin: str | None = None,
) -> UsageRecord:
    return UsageRecord(
        occurred_at_us=to_micros(at),
        request_id=f"req_seed_{next(_ids)}",
        key_id=key_id,
        account_id=account_id,
        client_ip=ip,
        origin=origin,
        method="GET",
        route="/v1/services",
        status=STATUS.get(outcome, 401),
        outcome=outcome,
        detail=None,
        latency_us=250,
    )


async def seed_usage(runtime: Runtime, rows: list[UsageRecord]) -> None:
    await append_usage(runtime.engine, rows, recorded_at_us=to_micros(runtime.clock.now()))
    await runtime.refresh_projections()
