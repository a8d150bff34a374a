"""The security view: open flags with their evidence (and Resolve), the audit trail with each event's
position and hash, log verification, every key as of an instant, and an export as JSON lines.

Auditors and owners see their account; members of an operator account see every account (like
``platform:admin`` on the API). Everything is read with the functions behind ``/v1/audit/*`` and
resolving is the same ``ResolveFlag`` command, so the page and the API cannot tell different stories.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter
from litestar.response import Redirect, Stream, Template
from sqlalchemy import select

from reservekit.audit.as_of import keys_as_of
from reservekit.audit.flags import FlagQuery, list_flags
from reservekit.audit.trail import EventFilter, read_events
from reservekit.clock import parse_instant, to_micros
from reservekit.db import read_transaction
from reservekit.detectors.rules import SEVERITIES
from reservekit.domain.errors import InvalidInput
from reservekit.events.store import row_to_event
from reservekit.events.tables import events
from reservekit.events.verify import verify_chain
from reservekit.usecases.commands import ResolveFlag
from reservekit.usecases.flags import RESOLUTIONS
from reservekit.web.audit import audit_event
from reservekit.web.dashboard.pages import NO_STORE, badge, form_of, render, see_other, text, when
from reservekit.web.dashboard.roles import Viewer, resolver_viewer, security_viewer
from reservekit.web.dashboard.visit import Visit

OPEN_FLAGS_SHOWN = 100
TRAIL_PAGE = 50
MAX_NOTE_CHARS = 2000
MAX_CURSOR = 2**63 - 1
Short = Annotated[str | None, Parameter(max_length=64)]
BeforeParam = Annotated[int | None, Parameter(ge=1, le=MAX_CURSOR)]


def parse_moment(raw: str | None, field: str) -> datetime | None:
    """``<input type="datetime-local">`` (read as UTC, which the page says) or RFC 3339 with an offset."""
    value = (raw or "").strip()
    if not value:
        return None
    for pattern in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        return parse_instant(value)
    except ValueError:
        message = f"{field} must be a date and time like 2026-06-01T11:00 (UTC)"
        raise InvalidInput(message, field=field) from None


def local_value(moment: datetime | None) -> str:
    """What a datetime-local field shows for ``moment`` (UTC, to the minute)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if moment else ""


def _range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise InvalidInput("from must be earlier than until", field="since")


class SecurityPages(Controller):
    path = "/security"

    @get("/")
    async def flags(
        self,
        visit: NamedDependency[Visit],
        resolved: Annotated[str | None, Parameter(max_length=128)] = None,
    ) -> Template:
        seen = await security_viewer(visit)
        query = FlagQuery(account_id=seen.scope, status="open")
        async with read_transaction(visit.engine) as conn:
            flags, more = await list_flags(conn, query, limit=OPEN_FLAGS_SHOWN)
        by_severity = [
            (severity, [f for f in flags if f.severity == severity]) for severity in reversed(SEVERITIES)
        ]
        evidence = {
            f.id: msgspec.json.format(msgspec.json.encode(f.evidence), indent=2).decode() for f in flags
        }
        return render(
            "security.html",
            title="Security",
            nav="security",
            viewer=seen,
            by_severity=by_severity,
            open_count=len(flags),
            more=more is not None,
            evidence=evidence,
            resolutions=sorted(RESOLUTIONS),
            resolved=resolved,
            when=when,
            now_value=local_value(visit.clock.now()),
            hour_ago=local_value(visit.clock.now() - timedelta(hours=1)),
            day_ago=local_value(visit.clock.now() - timedelta(days=1)),
        )

    @post("/flags/{flag_id:str}/resolve")
    async def resolve(
        self, flag_id: FromPath[str], visit: NamedDependency[Visit], request: Request[Any, Any, Any]
    ) -> Redirect:
        seen = await resolver_viewer(visit)
        form = await form_of(request)
        note = text(form, "note")
        if len(note) > MAX_NOTE_CHARS:
            raise InvalidInput(f"note must be at most {MAX_NOTE_CHARS} characters", field="note")
        command = ResolveFlag(
            flag_id=flag_id, account_id=seen.scope, resolution=text(form, "resolution"), note=note or None
        )
        await visit.application.execute(command, visit.metadata(seen.session))
        return see_other(f"/dashboard/security/?resolved={flag_id}")

    @get("/trail")
    async def trail(
        self,
        visit: NamedDependency[Visit],
        type: Short = None,
        key: Short = None,
        actor: Short = None,
        since: Short = None,
        until: Short = None,
        before: BeforeParam = None,
    ) -> Template:
        seen = await security_viewer(visit)
        start, end = parse_moment(since, "since"), parse_moment(until, "until")
        _range(start, end)
        rows = await read_events(
            visit.engine,
            EventFilter(
                account_id=seen.scope,
                stream_id=key or None,
                type=type or None,
                actor=actor or None,
                since=start,
                until=end,
                newest_first=True,
                before=before,
                limit=TRAIL_PAGE + 1,
            ),
        )
        shown = [audit_event(r, operator=seen.operator) for r in rows[:TRAIL_PAGE]]
        filters = {"type": type, "key": key, "actor": actor, "since": since, "until": until}
        query = urlencode({name: value for name, value in filters.items() if value})
        return render(
            "security_trail.html",
            title="Audit trail",
            nav="security",
            events=shown,
            filters=filters,
            query=query,
            before=before,
            next_before=shown[-1].position if len(rows) > TRAIL_PAGE else None,
            when=when,
            actor_of=_actor_of,
        )

    @post("/verify")
    async def verify(self, visit: NamedDependency[Visit]) -> Template:
        seen = await security_viewer(visit)
        report = await verify_chain(visit.engine)
        return render(
            "security_verify.html",
            title="Log integrity",
            nav="security",
            report=report,
            operator=seen.operator,
            status=200 if report.ok else 409,
        )

    @get("/keys-as-of")
    async def keys_as_of(self, visit: NamedDependency[Visit], at: Short = None) -> Template:
        seen = await security_viewer(visit)
        moment = parse_moment(at, "at") or visit.clock.now()
        states = await keys_as_of(visit.engine, moment, account_id=seen.scope)
        rows = [{"key": s, "badge": badge(s, moment)} for s in states]
        return render(
            "security_keys_as_of.html",
            title="Keys as of",
            nav="security",
            rows=rows,
            moment=moment,
            at_value=local_value(moment),
            operator=seen.operator,
            when=when,
        )

    @post("/export", status_code=200)
    async def export(self, visit: NamedDependency[Visit], request: Request[Any, Any, Any]) -> Stream:
        seen = await security_viewer(visit)
        form = await form_of(request)
        start, end = parse_moment(text(form, "since"), "since"), parse_moment(text(form, "until"), "until")
        _range(start, end)
        name = "reservekit-audit"
        if start:
            name += f"-from-{start.strftime('%Y%m%dT%H%M')}"
        if end:
            name += f"-until-{end.strftime('%Y%m%dT%H%M')}"
        return Stream(
            _export_lines(visit, seen, start, end),
            media_type="application/x-ndjson",
            headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}.jsonl"'},
        )


async def _export_lines(
    visit: Visit, seen: Viewer, start: datetime | None, end: datetime | None
) -> AsyncIterator[bytes]:
    """Each event as ``GET /v1/audit/events`` shows it (key hashes for operators only), one per line."""
    query = select(events).order_by(events.c.position)
    if seen.scope is not None:
        query = query.where(events.c.account_id == seen.scope)
    if start is not None:
        query = query.where(events.c.recorded_at_us >= to_micros(start))
    if end is not None:
        query = query.where(events.c.recorded_at_us < to_micros(end))
    encoder = msgspec.json.Encoder()
    async with read_transaction(visit.engine) as conn:
        result = await conn.stream(query.execution_options(yield_per=1000))
        async for row in result:
            yield encoder.encode(audit_event(row_to_event(row), operator=seen.operator)) + b"\n"


def _actor_of(metadata: dict[str, Any]) -> str:
    for name in ("actor_member_id", "actor_key_id", "actor_os_user", "actor_account_id"):
        value = metadata.get(name)
        if value:
            return str(value)
    return "—"
