"""``AsyncReserveKitClient``: every REST operation of the authority, on ``httpx.AsyncClient``.

``client.py`` is the same class without ``async``; keep the two in step (a test compares them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx
from httpx_sse import aconnect_sse

from reservekit_client import _calls as calls
from reservekit_client._calls import UNSET, Call
from reservekit_client._http import (
    FeedItem,
    RetryPolicy,
    client_headers,
    decode,
    feed_item,
    is_write,
    request_args,
    sse_params,
    unreachable,
)
from reservekit_client.errors import ServiceUnavailable, error_from_response
from reservekit_client.models import (
    Account,
    AccountWithKey,
    AuditEvent,
    ChainReport,
    ChangesPage,
    Flag,
    Key,
    KeysAsOf,
    KeyUsage,
    KeyWithSecret,
    LeakReceipt,
    Page,
    Service,
    UsageRow,
    Verification,
)

T = TypeVar("T")
# The SSE stream sends a comment every 5 s when idle; a read that waits much longer means it is gone.
FEED_READ_TIMEOUT = 45.0


class AsyncReserveKitClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=client_headers(api_key), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncReserveKitClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
        self, call: Call[T], *, idempotency_key: str | None = None, retry: RetryPolicy | None = None
    ) -> T:
        """Send ``call``, retrying per ``retry`` (default: the client's); answers or raises typed errors."""
        policy = retry or self.retry
        args = request_args(call, idempotency_key)
        write = is_write(call)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(**args)
            except httpx.TransportError as exc:
                wait = policy.delay(attempt, None, error=exc, write=write)
                if wait is None:
                    raise unreachable(exc) from exc
            else:
                wait = policy.delay(attempt, response, write=write) if response.status_code >= 400 else None
                if wait is None:
                    return decode(call, response)
            await asyncio.sleep(wait)

    # Accounts (platform:admin)
    async def list_accounts(
        self, *, cursor: str | None = None, limit: int | None = None
    ) -> Page[Account, str]:
        return await self.send(calls.list_accounts(cursor, limit))

    async def iter_accounts(self, *, page_size: int | None = None) -> AsyncIterator[Account]:
        cursor: str | None = None
        while True:
            page = await self.list_accounts(cursor=cursor, limit=page_size)
            for item in page.data:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def open_account(self, name: str, *, plan: str = "free", operator: bool = False) -> AccountWithKey:
        return await self.send(calls.open_account(name, plan, operator))

    async def get_account(self, account_id: str) -> Account:
        return await self.send(calls.get_account(account_id))

    async def change_plan(self, account_id: str, plan: str) -> Account:
        return await self.send(calls.change_plan(account_id, plan))

    # Keys
    async def create_key(
        self,
        *,
        name: str | None = None,
        domains: Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
        expires_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> KeyWithSecret:
        call = calls.create_key(name, domains, scopes, expires_at)
        return await self.send(call, idempotency_key=idempotency_key)

    async def list_keys(self, *, cursor: str | None = None, limit: int | None = None) -> Page[Key, str]:
        return await self.send(calls.list_keys(cursor, limit))

    async def iter_keys(self, *, page_size: int | None = None) -> AsyncIterator[Key]:
        cursor: str | None = None
        while True:
            page = await self.list_keys(cursor=cursor, limit=page_size)
            for item in page.data:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get_key(self, key_id: str) -> Key:
        return await self.send(calls.get_key(key_id))

    async def revoke_key(self, key_id: str, *, reason: str | None = None) -> Key:
        return await self.send(calls.revoke_key(key_id, reason))

    async def rotate_key(
        self, key_id: str, *, grace_period_seconds: int = 0, idempotency_key: str | None = None
    ) -> KeyWithSecret:
        call = calls.rotate_key(key_id, grace_period_seconds)
        return await self.send(call, idempotency_key=idempotency_key)

    async def key_usage(
        self,
        key_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket: str | None = None,
    ) -> KeyUsage:
        return await self.send(calls.key_usage(key_id, since, until, bucket))

    # Services
    async def list_services(
        self, *, cursor: str | None = None, limit: int | None = None
    ) -> Page[Service, str]:
        return await self.send(calls.list_services(cursor, limit))

    async def iter_services(self, *, page_size: int | None = None) -> AsyncIterator[Service]:
        cursor: str | None = None
        while True:
            page = await self.list_services(cursor=cursor, limit=page_size)
            for item in page.data:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def create_service(
        self,
        name: str,
        duration_minutes: int,
        *,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Service:
        call = calls.create_service(name, duration_minutes, description)
        return await self.send(call, idempotency_key=idempotency_key)

    async def get_service(self, service_id: str) -> Service:
        return await self.send(calls.get_service(service_id))

    async def update_service(
        self, service_id: str, *, name: Any = UNSET, duration_minutes: Any = UNSET, description: Any = UNSET
    ) -> Service:
        """Only the fields given change; ``description=None`` clears it."""
        return await self.send(calls.update_service(service_id, name, duration_minutes, description))

    async def delete_service(self, service_id: str) -> None:
        await self.send(calls.delete_service(service_id))

    # Audit (audit:read for the own account; platform:admin for all)
    async def list_audit_events(
        self, *, cursor: str | None = None, limit: int | None = None, **filters: Any
    ) -> Page[AuditEvent, str]:
        """Filters: account_id, stream_id, type, actor, since, until."""
        return await self.send(calls.audit_events(cursor, limit, **filters))

    async def iter_audit_events(
        self, *, page_size: int | None = None, **filters: Any
    ) -> AsyncIterator[AuditEvent]:
        cursor: str | None = None
        while True:
            page = await self.list_audit_events(cursor=cursor, limit=page_size, **filters)
            for item in page.data:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def list_audit_usage(
        self, *, cursor: str | None = None, limit: int | None = None, **filters: Any
    ) -> Page[UsageRow, str]:
        """Filters: account_id, key_id, outcome, client_ip, since, until."""
        return await self.send(calls.audit_usage(cursor, limit, **filters))

    async def iter_audit_usage(
        self, *, page_size: int | None = None, **filters: Any
    ) -> AsyncIterator[UsageRow]:
        cursor: str | None = None
        while True:
            page = await self.list_audit_usage(cursor=cursor, limit=page_size, **filters)
            for item in page.data:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def verify_chain(self) -> ChainReport:
        return await self.send(calls.verify_chain())

    async def keys_as_of(self, as_of: datetime, *, account_id: str | None = None) -> KeysAsOf:
        return await self.send(calls.keys_as_of(as_of, account_id))

    async def list_flags(
        self, *, cursor: str | None = None, limit: int | None = None, **filters: Any
    ) -> Page[Flag, str]:
        """Filters: account_id, key_id, rule, severity, status, since, until."""
        return await self.send(calls.list_flags(cursor, limit, **filters))

    async def iter_flags(self, *, page_size: int | None = None, **filters: Any) -> AsyncIterator[Flag]:
        cursor: str | None = None
        while True:
            page = await self.list_flags(cursor=cursor, limit=page_size, **filters)
            for item in page.data:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get_flag(self, flag_id: str) -> Flag:
        return await self.send(calls.get_flag(flag_id))

    async def resolve_flag(self, flag_id: str, resolution: str, *, note: str | None = None) -> Flag:
        return await self.send(calls.resolve_flag(flag_id, resolution, note))

    async def report_leak(self, key: str, *, source: str | None = None) -> LeakReceipt:
        return await self.send(calls.report_leak(key, source))

    # For other services (keys:verify)
    async def verify_key(
        self,
        key: str | None,
        *,
        required_scopes: Sequence[str] | None = None,
        origin: str | None = None,
        referer: str | None = None,
        client_ip: str | None = None,
        cost: int = 1,
        retry: RetryPolicy | None = None,
    ) -> Verification:
        call = calls.verify_key(
            key,
            required_scopes=required_scopes,
            origin=origin,
            referer=referer,
            client_ip=client_ip,
            cost=cost,
        )
        return await self.send(call, retry=retry)

    async def poll_changes(self, *, after: int | None = None, wait: float = 25.0) -> ChangesPage:
        """One JSON long-poll of the change feed; call again with ``after=page.next``."""
        return await self.send(calls.poll_changes(after, wait))

    async def stream_changes(self, *, after: int | None = None) -> AsyncIterator[FeedItem]:
        """The change feed as SSE: ``KeyChange``s, and a ``Position`` each time the feed has caught up.
        Ends when the server ends the stream (every few seconds); resume with ``after`` = the last item's
        position to miss nothing. A feed failure raises ``ServiceUnavailable``."""
        timeout = httpx.Timeout(self._http.timeout.connect, read=FEED_READ_TIMEOUT)
        try:
            async with aconnect_sse(
                self._http,
                "GET",
                "/v1/keys/changes",
                params=sse_params(after),
                headers={"Accept": "text/event-stream"},
                timeout=timeout,
            ) as source:
                if source.response.status_code >= 400:
                    await source.response.aread()
                    raise error_from_response(source.response)
                async for event in source.aiter_sse():
                    if event.event == "error":
                        raise ServiceUnavailable(f"the change feed failed: {event.data}", code="feed_error")
                    if event.event and event.data:
                        yield feed_item(event.event, event.data)
        except httpx.TransportError as exc:
            raise unreachable(exc) from exc
