"""The Webhooks pages: an account's endpoints, create (secret once), enable/disable, roll the secret,
delete; an endpoint's deliveries with every attempt, retry, and "send test event".

The same operations as ``/v1/webhook-endpoints`` (``reservekit.webhooks.endpoints`` and ``deliveries``),
with the member as actor. Every member may look (``webhooks:view``); only owners change anything
(``webhooks:manage``). A signing secret appears only in the response to the POST that made it.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from reservekit.db import read_transaction
from reservekit.domain.errors import DomainError
from reservekit.domain.roles import WEBHOOKS_MANAGE, WEBHOOKS_VIEW
from reservekit.domain.webhooks import SEVERITIES, WEBHOOK_EVENT_TYPES
from reservekit.web.dashboard.pages import form_of, render, see_other, text, when
from reservekit.web.dashboard.visit import Visit
from reservekit.web.pagination import next_cursor as encode_next
from reservekit.web.pagination import position_after
from reservekit.web.webhooks import provide_webhooks
from reservekit.webhooks import deliveries, endpoints
from reservekit.webhooks.endpoints import Webhooks

ENDPOINTS_PAGE_LIMIT = 100
DELIVERIES_PAGE_LIMIT = 25
NOTICES = {
    "enabled": "Endpoint enabled.",
    "disabled": "Endpoint disabled: nothing is sent to it until you enable it again.",
    "test": "Test event queued: it appears below once the dispatcher has sent it (reload).",
    "retry": "Delivery queued again, with the same webhook-id.",
    "deleted": "Endpoint deleted.",
}


def _endpoint_form(form: FormMultiDict) -> dict[str, Any]:
    return {
        "url": text(form, "url"),
        "event_types": [t for t in form.getall("event_types", []) if isinstance(t, str)],
        "min_flag_severity": text(form, "min_flag_severity") or "low",
        "description": text(form, "description") or None,
    }


class WebhookPages(Controller):
    path = "/webhooks"
    dependencies = {"webhooks": Provide(provide_webhooks, sync_to_thread=False)}

    @get("/")
    async def index(
        self,
        visit: NamedDependency[Visit],
        webhooks: NamedDependency[Webhooks],
        done: FromQuery[str | None] = None,
    ) -> Template:
        viewer, _ = await visit.require(WEBHOOKS_VIEW)
        async with read_transaction(visit.engine) as conn:
            states = await deliveries.list_endpoints(conn, viewer.account_id, limit=ENDPOINTS_PAGE_LIMIT)
        views = await deliveries.endpoint_views(webhooks, states, webhooks.failing_after_errors)
        return render(
            "webhooks.html",
            title="Webhooks",
            endpoints=views,
            viewer=viewer,
            notice=NOTICES.get(done or ""),
            when=when,
            nav="webhooks",
        )

    def _new_form(
        self, visit: Visit, draft: dict[str, Any], errors: dict[str, str], *, status: int
    ) -> Template:
        return render(
            "webhook_new.html",
            status=status,
            title="Add a webhook endpoint",
            draft=draft,
            errors=errors,
            event_types=WEBHOOK_EVENT_TYPES,
            severities=SEVERITIES,
            form_id=visit.new_form_id(),
            nav="webhooks",
        )

    @get("/new")
    async def new(self, visit: NamedDependency[Visit]) -> Template:
        await visit.require(WEBHOOKS_MANAGE)
        draft = {"url": "", "event_types": ["flag.raised", "leak.reported"], "min_flag_severity": "high"}
        return self._new_form(visit, {**draft, "description": ""}, {}, status=200)

    @post("/")
    async def create(
        self,
        visit: NamedDependency[Visit],
        webhooks: NamedDependency[Webhooks],
        request: Request[Any, Any, Any],
    ) -> Template:
        viewer, session = await visit.require(WEBHOOKS_MANAGE)
        form = await form_of(request)
        values = _endpoint_form(form)
        if not await visit.spend_form(text(form, "form_id")):
            return render("already_shown.html", status=409, title="Already submitted", nav="webhooks")
        try:
            created = await endpoints.create_endpoint(
                webhooks, account_id=viewer.account_id, metadata=visit.metadata(session), **values
            )
        except DomainError as exc:
            draft = {**values, "description": values["description"] or ""}
            return self._new_form(visit, draft, {exc.field or "form": exc.message}, status=422)
        return self._secret(
            created.endpoint.endpoint_id, created.secret, "Your new endpoint's signing secret"
        )

    def _secret(self, endpoint_id: str, secret: str, heading: str) -> Template:
        return render(
            "webhook_secret.html",
            status=201,
            title=heading,
            heading=heading,
            endpoint_id=endpoint_id,
            secret=secret,
            nav="webhooks",
        )

    @get("/{endpoint_id:str}")
    async def detail(
        self,
        endpoint_id: FromPath[str],
        visit: NamedDependency[Visit],
        webhooks: NamedDependency[Webhooks],
        cursor: FromQuery[str | None] = None,
        done: FromQuery[str | None] = None,
    ) -> Template:
        viewer, _ = await visit.require(WEBHOOKS_VIEW)
        state = await endpoints.load_endpoint(webhooks, account_id=viewer.account_id, endpoint_id=endpoint_id)
        [view] = await deliveries.endpoint_views(webhooks, [state], webhooks.failing_after_errors)
        before = position_after("deliveries", cursor)
        async with read_transaction(visit.engine) as conn:
            page, last_seq = await deliveries.list_deliveries(
                conn, endpoint_id, before_seq=before, limit=DELIVERIES_PAGE_LIMIT
            )
        return render(
            "webhook_detail.html",
            title=state.url,
            endpoint=view,
            deliveries=page,
            next_cursor=encode_next("deliveries", last_seq),
            viewer=viewer,
            notice=NOTICES.get(done or ""),
            form_id=visit.new_form_id(),
            when=when,
            nav="webhooks",
        )

    @post("/{endpoint_id:str}/enabled")
    async def set_enabled(
        self,
        endpoint_id: FromPath[str],
        visit: NamedDependency[Visit],
        webhooks: NamedDependency[Webhooks],
        request: Request[Any, Any, Any],
    ) -> Redirect:
        viewer, session = await visit.require(WEBHOOKS_MANAGE)
        raw = text(await form_of(request), "enabled")
        if raw not in ("true", "false"):
            return see_other(f"/dashboard/webhooks/{endpoint_id}")
        await endpoints.update_endpoint(
            webhooks,
            account_id=viewer.account_id,
            endpoint_id=endpoint_id,
            enabled=raw == "true",
            metadata=visit.metadata(session),
        )
        return see_other(
            f"/dashboard/webhooks/{endpoint_id}?done={'enabled' if raw == 'true' else 'disabled'}"
        )

    @post("/{endpoint_id:str}/roll-secret")
    async def roll_secret(
        self,
        endpoint_id: FromPath[str],
        visit: NamedDependency[Visit],
        webhooks: NamedDependency[Webhooks],
        request: Request[Any, Any, Any],
    ) -> Template:
        viewer, session = await visit.require(WEBHOOKS_MANAGE)
        await endpoints.load_endpoint(webhooks, account_id=viewer.account_id, endpoint_id=endpoint_id)
        if not await visit.spend_form(text(await form_of(request), "form_id")):
            return render("already_shown.html", status=409, title="Already submitted", nav="webhooks")
        rolled = await endpoints.roll_secret(
            webhooks, account_id=viewer.account_id, endpoint_id=endpoint_id, metadata=visit.metadata(session)
        )
        return self._secret(endpoint_id, rolled.secret, "The endpoint's new signing secret")

    @get("/{endpoint_id:str}/delete")
    async def confirm_delete(
        self, endpoint_id: FromPath[str], visit: NamedDependency[Visit], webhooks: NamedDependency[Webhooks]
    ) -> Template:
        viewer, _ = await visit.require(WEBHOOKS_MANAGE)
        state = await endpoints.load_endpoint(webhooks, account_id=viewer.account_id, endpoint_id=endpoint_id)
        return render("webhook_delete.html", title="Delete endpoint", endpoint=state, nav="webhooks")

    @post("/{endpoint_id:str}/delete")
    async def delete(
        self, endpoint_id: FromPath[str], visit: NamedDependency[Visit], webhooks: NamedDependency[Webhooks]
    ) -> Redirect:
        viewer, session = await visit.require(WEBHOOKS_MANAGE)
        await endpoints.delete_endpoint(
            webhooks, account_id=viewer.account_id, endpoint_id=endpoint_id, metadata=visit.metadata(session)
        )
        return see_other("/dashboard/webhooks/?done=deleted")

    @post("/{endpoint_id:str}/test")
    async def send_test(
        self, endpoint_id: FromPath[str], visit: NamedDependency[Visit], webhooks: NamedDependency[Webhooks]
    ) -> Redirect:
        viewer, _ = await visit.require(WEBHOOKS_MANAGE)
        await deliveries.send_test_event(webhooks, account_id=viewer.account_id, endpoint_id=endpoint_id)
        webhooks.nudge()
        return see_other(f"/dashboard/webhooks/{endpoint_id}?done=test")

    @post("/{endpoint_id:str}/deliveries/{delivery_id:str}/retry")
    async def retry(
        self,
        endpoint_id: FromPath[str],
        delivery_id: FromPath[str],
        visit: NamedDependency[Visit],
        webhooks: NamedDependency[Webhooks],
    ) -> Redirect:
        viewer, _ = await visit.require(WEBHOOKS_MANAGE)
        await deliveries.retry_delivery(
            webhooks, account_id=viewer.account_id, endpoint_id=endpoint_id, delivery_id=delivery_id
        )
        webhooks.nudge()
        return see_other(f"/dashboard/webhooks/{endpoint_id}?done=retry")
