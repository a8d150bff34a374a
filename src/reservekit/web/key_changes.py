"""``GET /v1/keys/changes`` (keys:verify): the key change feed as Server-Sent Events, or JSON long-poll.

``Accept: application/json`` gets one ``ChangesPage`` as soon as there is a visible change, or an
empty one (meaning "caught up") after ``wait`` seconds (at most 30). Anything else gets an SSE stream:
one event per change (``id`` = its log position, ``event`` = its type, ``data`` = the ``KeyChange``
JSON), and a ``position`` event each time the reader has caught up with the log (the first one says the
backlog is done; later ones move the resume point past changes it cannot see), and a comment every
5 s when idle to keep proxies from closing it. Resume with ``after=N`` or the ``Last-Event-ID``
header; neither starts at the current head.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy.exc import SQLAlchemyError

from reservekit.auth.changes import MAX_SCAN, ChangesPage, head_position, read_changes
from reservekit.auth.key_view import CachedKey
from reservekit.auth.verification import KeyAuthority
from reservekit.background import wait_for_wakeup
from reservekit.db import DatabaseUnavailable
from reservekit.domain.scopes import KEYS_VERIFY
from reservekit.web.access import requires
from reservekit.web.deps import ApiCall
from reservekit.web.problems import InvalidParameter

MAX_WAIT_SECONDS = 30.0
HEARTBEAT_SECONDS = 5.0
# A stream ends after this long and the reader reconnects with Last-Event-ID, missing nothing. Short,
# because the server cannot tell a stream it is shutting down (Granian drains open connections before
# the app's shutdown runs): this bounds how long a stopping replica waits for its feed readers.
MAX_STREAM_SECONDS = 10.0
_encoder = msgspec.json.Encoder()


@dataclass
class _JsonOrEventStream(Operation):
    """The 200 answer is JSON (``Accept: application/json``) or, by default, an SSE stream: document both."""

    def __post_init__(self) -> None:
        ok = self.responses.get("200") if self.responses else None
        if isinstance(ok, OpenAPIResponse):
            ok.content = {
                **(ok.content or {}),
                "text/event-stream": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        description="One Server-Sent Event: id = log position, event = type, data = JSON",
                        properties={
                            "id": Schema(type=OpenAPIType.STRING),
                            "event": Schema(type=OpenAPIType.STRING),
                            "data": Schema(type=OpenAPIType.STRING),
                            "retry": Schema(type=OpenAPIType.INTEGER),
                        },
                    )
                ),
            }


@get(
    "/v1/keys/changes",
    opt=requires(KEYS_VERIFY),
    tags=["keys"],
    operation_class=_JsonOrEventStream,
    summary="Key and plan changes by log position (SSE, or JSON long-poll with Accept: application/json)",
)
async def key_changes(
    request: Request[Any, Any, Any],
    call: NamedDependency[ApiCall],
    after: Annotated[int | None, Parameter(ge=0)] = None,
    wait: Annotated[float, Parameter(ge=0, le=MAX_WAIT_SECONDS)] = 25.0,
    limit: Annotated[int, Parameter(ge=1, le=MAX_SCAN)] = MAX_SCAN,
) -> Response[Any]:
    authority: KeyAuthority = request.app.state.key_authority
    caller = call.caller
    account_id = None if caller.operator else caller.account_id
    if after is None:
        after = _last_event_id(request.headers.get("last-event-id"))
    if after is None:
        after = await head_position(authority.engine)
    if _wants_json(request.headers.get("accept", "")):
        page = await _long_poll(authority, after=after, account_id=account_id, wait=wait, limit=limit)
        return Response(page)
    return ServerSentEvent(_stream(authority, caller, after=after, account_id=account_id, limit=limit))


def _wants_json(accept: str) -> bool:
    return "application/json" in accept and "text/event-stream" not in accept


def _last_event_id(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidParameter("Last-Event-ID must be a log position (a whole number)", field="Last-Event-ID")
    return int(raw)


async def _long_poll(
    authority: KeyAuthority, *, after: int, account_id: str | None, wait: float, limit: int
) -> ChangesPage:
    """Visible changes as soon as there are any; an empty page means "caught up with the log"."""
    deadline = time.monotonic() + wait
    waiter = authority.wakeup.subscribe()
    try:
        while True:
            page, more = await read_changes(authority.engine, after=after, account_id=account_id, limit=limit)
            if page.changes:
                return page
            after = page.next
            if more:
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return page
            await wait_for_wakeup(waiter, min(left, authority.poll_interval))
    finally:
        authority.wakeup.unsubscribe(waiter)


def _usable(caller: CachedKey, now: float) -> bool:
    """The view updates the caller's entry in place: a revoked service key loses its stream."""
    return not caller.revoked and (caller.expires_at is None or now < caller.expires_at)


async def _stream(
    authority: KeyAuthority, caller: CachedKey, *, after: int, account_id: str | None, limit: int
) -> AsyncIterator[ServerSentEventMessage]:
    waiter = authority.wakeup.subscribe()
    started = last_sent = time.monotonic()
    announced: int | None = None
    try:
        while (
            _usable(caller, authority.clock.timestamp()) and time.monotonic() - started < MAX_STREAM_SECONDS
        ):
            try:
                page, more = await read_changes(
                    authority.engine, after=after, account_id=account_id, limit=limit
                )
            except (DatabaseUnavailable, SQLAlchemyError, OSError):
                # Tell the reader this is a failure, not the usual end of a stream; it reconnects from
                # its last id with backoff, and nothing is skipped.
                yield ServerSentEventMessage(data='{"code":"database_unavailable"}', event="error")
                return
            for change in page.changes:
                yield ServerSentEventMessage(
                    data=_encoder.encode(change).decode(), event=change.type, id=str(change.position)
                )
                last_sent = time.monotonic()
            after = page.next
            if more:
                continue
            if announced != after:
                # Caught up with the log: say so, also to move the resume point past hidden changes.
                announced = after
                last_sent = time.monotonic()
                yield _position(after)
            elif time.monotonic() - last_sent >= HEARTBEAT_SECONDS:
                last_sent = time.monotonic()
                yield ServerSentEventMessage(comment="keep-alive")
            await wait_for_wakeup(waiter, authority.poll_interval)
    finally:
        authority.wakeup.unsubscribe(waiter)


def _position(position: int) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=f'{{"position":{position}}}', event="position", id=str(position))
