"""``/v1/webhook-endpoints``: the caller's account's endpoints, their deliveries, retries and tests.

Thin: every action is a use case in ``usecases/webhooks.py`` or ``usecases/webhook_deliveries.py``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from reservekit.auth.key_view import CachedKey
from reservekit.db import read_transaction
from reservekit.detectors.rules import Severity
from reservekit.domain.webhooks import MAX_DESCRIPTION_CHARS, MAX_URL_CHARS, EndpointState
from reservekit.events.types import Metadata
from reservekit.runtime import Runtime
from reservekit.usecases import webhook_deliveries as deliveries
from reservekit.usecases import webhooks as endpoints
from reservekit.web.access import requires
from reservekit.web.pagination import MAX_PAGE, Page

READ = requires("webhooks:read")
WRITE = requires("webhooks:write")
Url = Annotated[str, msgspec.Meta(max_length=MAX_URL_CHARS)]
EventTypes = Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=20)]
Description = Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION_CHARS)]


class CreateEndpointBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Url
    event_types: EventTypes
    min_flag_severity: Severity = "low"
    enabled: bool = True
    description: Description | None = None


class UpdateEndpointBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Url | None = None
    event_types: EventTypes | None = None
    min_flag_severity: Severity | None = None
    enabled: bool | None = None
    description: Description | None = None


class TestEventOut(msgspec.Struct, kw_only=True):
    delivery_id: str
    status: str = "queued"


def _with_secret(view: deliveries.EndpointOut, secret: str) -> deliveries.EndpointWithSecretOut:
    return deliveries.EndpointWithSecretOut(**msgspec.structs.asdict(view), secret=secret)


async def _view(runtime: Runtime, state: EndpointState) -> deliveries.EndpointOut:
    failing_after = runtime.dispatcher.config.failing_after_errors
    [view] = await deliveries.endpoint_views(runtime.webhooks, [state], failing_after)
    return view


class WebhookEndpointsController(Controller):
    path = "/v1/webhook-endpoints"
    tags = ["webhooks"]

    @post("/", opt=WRITE, summary="Create an endpoint; its signing secret (whsec_…) is returned this once")
    async def create(
        self,
        data: JSONBody[CreateEndpointBody],
        caller: NamedDependency[CachedKey],
        runtime: NamedDependency[Runtime],
        metadata: NamedDependency[Metadata],
    ) -> deliveries.EndpointWithSecretOut:
        created = await endpoints.create_endpoint(
            runtime.webhooks,
            account_id=caller.account_id,
            url=data.url,
            event_types=data.event_types,
            min_flag_severity=data.min_flag_severity,
            enabled=data.enabled,
            description=data.description,
            metadata=metadata,
        )
        await runtime.refresh_projections(lifecycle_only=True)
        return _with_secret(await _view(runtime, created.endpoint), created.secret)

    @get("/", opt=READ, summary="List the account's endpoints (never their secrets)")
    async def list(
        self,
        caller: NamedDependency[CachedKey],
        runtime: NamedDependency[Runtime],
        cursor: Annotated[str | None, Parameter(max_length=64)] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = 50,
    ) -> Page[deliveries.EndpointOut]:
        async with read_transaction(runtime.engine) as conn:
            states = await deliveries.list_endpoints(conn, caller.account_id, after=cursor, limit=limit + 1)
        failing_after = runtime.dispatcher.config.failing_after_errors
        page = await deliveries.endpoint_views(runtime.webhooks, states[:limit], failing_after)
        return Page(data=page, next_cursor=page[-1].id if len(states) > limit else None)

    @get("/{endpoint_id:str}", opt=READ, summary="Read one endpoint")
    async def read(
        self,
        endpoint_id: FromPath[str],
        caller: NamedDependency[CachedKey],
        runtime: NamedDependency[Runtime],
    ) -> deliveries.EndpointOut:
        state = await endpoints.load_endpoint(
            runtime.webhooks, account_id=caller.account_id, endpoint_id=endpoint_id
        )
        return await _view(runtime, state)

    @patch("/{endpoint_id:str}", opt=WRITE, summary="Change url, event types, severity, enabled, description")
    async def update(
        self,
        endpoint_id: FromPath[str],
        data: JSONBody[UpdateEndpointBody],
        caller: NamedDependency[CachedKey],
        runtime: NamedDependency[Runtime],
        metadata: NamedDependency[Metadata],
    ) -> deliveries.EndpointOut:
        state = await endpoints.update_endpoint(
            runtime.webhooks,
            account_id=caller.account_id,
            endpoint_id=endpoint_id,
            url=data.url,
            event_types=data.event_types,
            min_flag_severity=data.min_flag_severity,
            enabled=data.enabled,
            description=data.description,
            metadata=metadata,
        )
        await runtime.refresh_projections(lifecycle_only=True)
        return await _view(runtime, state)

    @delete("/{endpoint_id:str}", opt=WRITE, status_code=204, summary="Delete an endpoint")
    async def remove(
        self,
        endpoint_id: FromPath[str],
        caller: NamedDependency[CachedKey],
        runtime: NamedDependency[Runtime],
        metadata: NamedDependency[Metadata],
    ) -> None:
        await endpoints.delete_endpoint(
            runtime.webhooks, account_id=caller.account_id, endpoint_id=endpoint_id, metadata=metadata
        )
        await runtime.refresh_projections(lifecycle_only=True)

    @post(
        "/{endpoint_id:str}/roll-secret",
        opt=WRITE,
        status_code=200,
        summary="Replace the signing secret; the new one is returned this once",
    )
    async def roll_secret(
        self,
        endpoint_id: FromPath[str],
        caller: NamedDependency[CachedKey],
        runtime: NamedDependency[Runtime],
        metadata: NamedDependency[Metadata],
    ) -> deliveries.EndpointWithSecretOut:
        rolled = await endpoints.roll_secret(
            runtime.webhooks, account_id=caller.account_id, endpoint_id=endpoint_id, metadata=metadata
        )
        await runtime.refresh_projections(lifecycle_only=True)
        return _with_secret(await _view(runtime, rolled.endpoint), rolled.secret)

    @post("/{endpoint_id:str}/test", opt=WRITE, status_code=202, summary="Queue a webhook.test delivery")
    async def send_test(
        self,
        endpoint_id: FromPath[str],
        caller: NamedDependency[CachedKey],
        runtime: NamedDependency[Runtime],
    ) -> TestEventOut:
        delivery_id = await deliveries.send_test_event(
            runtime.webhooks, account_id=caller.account_id, endpoint_id=endpoint_id
        )
        runtime.wakeup.notify()
        return TestEventOut(delivery_id=delivery_id)

    @get("/{endpoint_id:str}/deliveries", opt=READ, summary="Deliveries, newest first, with every attempt")
    async def list_deliveries(
        self,
        endpoint_id: FromPath[str],
        caller: NamedDependency[CachedKey],
        runtime: NamedDependency[Runtime],
        cursor: Annotated[str | None, Parameter(max_length=32)] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = 50,
    ) -> Page[deliveries.DeliveryOut]:
        await endpoints.load_endpoint(runtime.webhooks, account_id=caller.account_id, endpoint_id=endpoint_id)
        before = deliveries.parse_delivery_cursor(cursor)
        async with read_transaction(runtime.engine) as conn:
            page, next_cursor = await deliveries.list_deliveries(
                conn, endpoint_id, before_seq=before, limit=limit
            )
        return Page(data=page, next_cursor=next_cursor)

    @post(
        "/{endpoint_id:str}/deliveries/{delivery_id:str}/retry",
        opt=WRITE,
        status_code=202,
        summary="Send a delivery again now (same webhook-id), with a fresh retry window",
    )
    async def retry(
        self,
        endpoint_id: FromPath[str],
        delivery_id: FromPath[str],
        caller: NamedDependency[CachedKey],
        runtime: NamedDependency[Runtime],
    ) -> TestEventOut:
        await deliveries.retry_delivery(
            runtime.webhooks, account_id=caller.account_id, endpoint_id=endpoint_id, delivery_id=delivery_id
        )
        runtime.wakeup.notify()
        return TestEventOut(delivery_id=delivery_id)
