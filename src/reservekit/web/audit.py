"""The audit trail over HTTP: audit:read sees its own account; platform:admin sees every account."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from reservekit.audit.as_of import keys_as_of
from reservekit.audit.trail import EventFilter, UsageFilter, read_events, read_usage
from reservekit.clock import from_micros
from reservekit.domain.events import RecordedEvent
from reservekit.events.verify import verify_chain
from reservekit.schemas import KeyOut, key_out
from reservekit.web.access import requires
from reservekit.web.deps import ApiCall
from reservekit.web.pagination import Cursor, next_cursor, position_after
from reservekit.web.params import IdFilter, InstantText, Limit, instant, optional_instant

AUDITORS = requires("audit:read", "platform:admin")


class AuditEvent(msgspec.Struct, kw_only=True):
    """A logged event as the trail shows it; ``key_hash`` only to operators (platform:admin)."""

    position: int
    stream_id: str
    stream_version: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    prev_hash: str
    hash: str


class EventPage(msgspec.Struct):
    data: list[AuditEvent]
    next_cursor: str | None


class ChainVerdict(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The chain's verdict. The log's size and head hash span every account: operators only."""

    ok: bool
    first_bad_position: int | None = None
    reason: str | None = None
    count: int | None = None
    head_position: int | None = None
    head_hash: str | None = None


def audit_event(recorded: RecordedEvent, *, operator: bool) -> AuditEvent:
    data: dict[str, Any] = msgspec.to_builtins(recorded.data)
    if not operator:
        data.pop("key_hash", None)
    return AuditEvent(
        position=recorded.position,
        stream_id=recorded.stream_id,
        stream_version=recorded.stream_version,
        type=recorded.type,
        data=data,
        metadata=msgspec.to_builtins(recorded.metadata),
        recorded_at=recorded.recorded_at,
        prev_hash=recorded.prev_hash,
        hash=recorded.hash,
    )


class UsageOut(msgspec.Struct, kw_only=True):
    position: int
    occurred_at: datetime
    request_id: str
    key_id: str | None
    account_id: str | None
    client_ip: str
    origin: str | None
    method: str
    route: str
    status: int
    outcome: str
    detail: str | None
    latency_ms: float


class UsagePage(msgspec.Struct):
    data: list[UsageOut]
    next_cursor: str | None


class KeysAsOf(msgspec.Struct):
    as_of: datetime
    data: list[KeyOut]


class AuditController(Controller):
    path = "/v1/audit"
    tags = ["audit"]

    @get("/events", opt=AUDITORS, summary="Lifecycle events with their hashes, in log order")
    async def events(
        self,
        call: NamedDependency[ApiCall],
        account_id: IdFilter = None,
        stream_id: IdFilter = None,
        type: IdFilter = None,
        actor: IdFilter = None,
        since: InstantText = None,
        until: InstantText = None,
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> EventPage:
        f = EventFilter(
            account_id=call.visible_account(account_id),
            stream_id=stream_id,
            type=type,
            actor=actor,
            since=optional_instant(since, "since"),
            until=optional_instant(until, "until"),
            after=position_after("audit_events", cursor) or 0,
            limit=limit + 1,
        )
        rows = await read_events(call.engine, f)
        page = [audit_event(r, operator=call.caller.operator) for r in rows[:limit]]
        return EventPage(page, next_cursor("audit_events", page[-1].position if len(rows) > limit else None))

    @get("/usage", opt=AUDITORS, summary="Usage rows (one per request, refused ones included)")
    async def usage(
        self,
        call: NamedDependency[ApiCall],
        account_id: IdFilter = None,
        key_id: IdFilter = None,
        outcome: IdFilter = None,
        client_ip: IdFilter = None,
        since: InstantText = None,
        until: InstantText = None,
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> UsagePage:
        f = UsageFilter(
            account_id=call.visible_account(account_id),
            key_id=key_id,
            outcome=outcome,
            client_ip=client_ip,
            since=optional_instant(since, "since"),
            until=optional_instant(until, "until"),
            after=position_after("audit_usage", cursor) or 0,
            limit=limit + 1,
        )
        rows = await read_usage(call.engine, f)
        page = [
            UsageOut(
                position=r.position,
                occurred_at=from_micros(r.occurred_at_us),
                request_id=r.request_id,
                key_id=r.key_id,
                account_id=r.account_id,
                client_ip=r.client_ip,
                origin=r.origin,
                method=r.method,
                route=r.route,
                status=r.status,
                outcome=r.outcome,
                detail=r.detail,
                latency_ms=r.latency_us / 1000,
            )
            for r in rows[:limit]
        ]
        return UsagePage(page, next_cursor("audit_usage", page[-1].position if len(rows) > limit else None))

    @get("/verify", opt=AUDITORS, summary="Recompute the hash chain; names the first bad position")
    async def verify(self, call: NamedDependency[ApiCall]) -> ChainVerdict:
        report = await verify_chain(call.engine)
        verdict = ChainVerdict(
            ok=report.ok, first_bad_position=report.first_bad_position, reason=report.reason
        )
        if not call.caller.operator:
            return verdict
        return msgspec.structs.replace(
            verdict, count=report.count, head_position=report.head_position, head_hash=report.head_hash
        )

    @get("/keys", opt=AUDITORS, summary="Every key's state (active, revoked, expired) at an instant")
    async def keys(
        self,
        call: NamedDependency[ApiCall],
        as_of: Annotated[str, Parameter(max_length=64, description="RFC 3339 with an offset")],
        account_id: IdFilter = None,
    ) -> KeysAsOf:
        moment = instant(as_of, "as_of")
        states = await keys_as_of(call.engine, moment, account_id=call.visible_account(account_id))
        return KeysAsOf(moment, [key_out(state, now=moment) for state in states])
