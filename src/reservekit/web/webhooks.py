"""``/v1/webhook-endpoints``: the caller's account's endpoints, their deliveries, retries and tests.

Thin: every action is an operation of ``reservekit.webhooks`` (``endpoints.py``, ``deliveries.py``),
which the CLI calls too. Besides ``call`` (who is calling), the controller takes the ``Webhooks``
service that ``create_app`` puts in the app state; it never sees the runtime.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from reservekit.db import read_transaction
from reservekit.domain.webhooks import MAX_DESCRIPTION_CHARS, MAX_URL_CHARS, EndpointState
from reservekit.web.access import requires
from reservekit.web.deps import ApiCall
from reservekit.web.pagination import Cursor, Page, id_after, next_cursor, position_after
from reservekit.web.params import Limit
from reservekit.web.secrets import NO_STORE, created_with_secret
from reservekit.webhooks import deliveries, endpoints
from reservekit.webhooks.endpoints import Webhooks

Severity = Literal["low", "medium", "high", "critical"]

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


async def _view(webhooks: Webhooks, state: EndpointState) -> deliveries.EndpointOut:
    [view] = await deliveries.endpoint_views(webhooks, [state], webhooks.failing_after_errors)
    return view


def provide_webhooks(request: Request[Any, Any, Any]) -> Webhooks:
    service: Webhooks = request.app.state.webhooks
    return service


class WebhookEndpointsController(Controller):
    path = "/v1/webhook-endpoints"
    tags = ["webhooks"]
    dependencies = {"webhooks": Provide(provide_webhooks, sync_to_thread=False)}

    @post("/", opt=WRITE, summary="Create an endpoint; its signing secret (whsec_…) is returned this once")
    async def create(
        self,
        data: JSONBody[CreateEndpointBody],
        call: NamedDependency[ApiCall],
        webhooks: NamedDependency[Webhooks],
    ) -> Response[deliveries.EndpointWithSecretOut]:
        created = await endpoints.create_endpoint(
            webhooks,
            account_id=call.caller.account_id,
            url=data.url,
            event_types=data.event_types,
            min_flag_severity=data.min_flag_severity,
            enabled=data.enabled,
            description=data.description,
            metadata=call.metadata,
        )
        body = _with_secret(await _view(webhooks, created.endpoint), created.secret)
        return created_with_secret(body, f"/v1/webhook-endpoints/{body.id}")

    @get("/", opt=READ, summary="List the account's endpoints (never their secrets)")
    async def list(
        self,
        call: NamedDependency[ApiCall],
        webhooks: NamedDependency[Webhooks],
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[deliveries.EndpointOut]:
        async with read_transaction(call.engine) as conn:
            states = await deliveries.list_endpoints(
                conn, call.caller.account_id, after=id_after("webhook_endpoints", cursor), limit=limit + 1
            )
        page = await deliveries.endpoint_views(webhooks, states[:limit], webhooks.failing_after_errors)
        return Page(
            data=page,
            next_cursor=next_cursor("webhook_endpoints", page[-1].id if len(states) > limit else None),
        )

    @get("/{endpoint_id:str}", opt=READ, summary="Read one endpoint")
    async def read(
        self,
        endpoint_id: FromPath[str],
        call: NamedDependency[ApiCall],
        webhooks: NamedDependency[Webhooks],
    ) -> deliveries.EndpointOut:
        state = await endpoints.load_endpoint(
            webhooks, account_id=call.caller.account_id, endpoint_id=endpoint_id
        )
        return await _view(webhooks, state)

    @patch("/{endpoint_id:str}", opt=WRITE, summary="Change url, event types, severity, enabled, description")
    async def update(
        self,
        endpoint_id: FromPath[str],
        data: JSONBody[UpdateEndpointBody],
        call: NamedDependency[ApiCall],
        webhooks: NamedDependency[Webhooks],
    ) -> deliveries.EndpointOut:
        state = await endpoints.update_endpoint(
            webhooks,
            account_id=call.caller.account_id,
            endpoint_id=endpoint_id,
            url=data.url,
            event_types=data.event_types,
            min_flag_severity=data.min_flag_severity,
            enabled=data.enabled,
            description=data.description,
            metadata=call.metadata,
        )
        return await _view(webhooks, state)

    @delete("/{endpoint_id:str}", opt=WRITE, status_code=204, summary="Delete an endpoint")
    async def remove(
        self,
        endpoint_id: FromPath[str],
        call: NamedDependency[ApiCall],
        webhooks: NamedDependency[Webhooks],
    ) -> None:
        await endpoints.delete_endpoint(
            webhooks, account_id=call.caller.account_id, endpoint_id=endpoint_id, metadata=call.metadata
        )

    @post(
        "/{endpoint_id:str}/roll-secret",
        opt=WRITE,
        status_code=200,
        summary="Replace the signing secret; the new one is returned this once",
    )
    async def roll_secret(
        self,
        endpoint_id: FromPath[str],
        call: NamedDependency[ApiCall],
        webhooks: NamedDependency[Webhooks],
    ) -> Response[deliveries.EndpointWithSecretOut]:
        rolled = await endpoints.roll_secret(
            webhooks, account_id=call.caller.account_id, endpoint_id=endpoint_id, metadata=call.metadata
        )
        body = _with_secret(await _view(webhooks, rolled.endpoint), rolled.secret)
        return Response(body, status_code=200, headers=NO_STORE)

    @post("/{endpoint_id:str}/test", opt=WRITE, status_code=202, summary="Queue a webhook.test delivery")
    async def send_test(
        self,
        endpoint_id: FromPath[str],
        call: NamedDependency[ApiCall],
        webhooks: NamedDependency[Webhooks],
    ) -> TestEventOut:
        delivery_id = await deliveries.send_test_event(
            webhooks, account_id=call.caller.account_id, endpoint_id=endpoint_id
        )
        webhooks.nudge()
        return TestEventOut(delivery_id=delivery_id)

    @get("/{endpoint_id:str}/deliveries", opt=READ, summary="Deliveries, newest first, with every attempt")
    async def list_deliveries(
        self,
        endpoint_id: FromPath[str],
        call: NamedDependency[ApiCall],
        webhooks: NamedDependency[Webhooks],
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[deliveries.DeliveryOut]:
        before = position_after("deliveries", cursor)
        await endpoints.load_endpoint(webhooks, account_id=call.caller.account_id, endpoint_id=endpoint_id)
        async with read_transaction(call.engine) as conn:
            page, last_seq = await deliveries.list_deliveries(
                conn, endpoint_id, before_seq=before, limit=limit
            )
        return Page(data=page, next_cursor=next_cursor("deliveries", last_seq))

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
        call: NamedDependency[ApiCall],
        webhooks: NamedDependency[Webhooks],
    ) -> TestEventOut:
        await deliveries.retry_delivery(
            webhooks, account_id=call.caller.account_id, endpoint_id=endpoint_id, delivery_id=delivery_id
        )
        webhooks.nudge()
        return TestEventOut(delivery_id=delivery_id)
