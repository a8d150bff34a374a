"""All accounts, for members of an operator account (the dashboard's ``platform:admin``): a paginated
list with each account's plan, and plan changes through the same ``ChangePlan`` command as
``PATCH /v1/accounts/{id}``. Every member of an operator account may look; only its owners change plans.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from projections import accounts
from reservekit.db import read_transaction
from reservekit.domain.roles import ACCOUNTS_MANAGE, ACCOUNTS_VIEW
from reservekit.usecases.commands import ChangePlan
from reservekit.web.dashboard.pages import form_of, render, see_other, text, when
from reservekit.web.dashboard.visit import Visit
from reservekit.web.pagination import Cursor, id_after
from reservekit.web.pagination import next_cursor as encode_next

ACCOUNTS_PAGE_LIMIT = 50


class OperatorPages(Controller):
    path = "/operator"

    @get("/accounts")
    async def accounts(
        self,
        visit: NamedDependency[Visit],
        cursor: Cursor = None,
        changed: FromQuery[str | None] = None,
    ) -> Template:
        viewer, _ = await visit.require(ACCOUNTS_VIEW)
        async with read_transaction(visit.engine) as conn:
            states = await accounts.list_accounts(
                conn, after=id_after("accounts", cursor), limit=ACCOUNTS_PAGE_LIMIT + 1
            )
        page = states[:ACCOUNTS_PAGE_LIMIT]
        plans = visit.application.deps.plans
        return render(
            "operator_accounts.html",
            title="All accounts",
            accounts=page,
            next_cursor=encode_next(
                "accounts", page[-1].account_id if len(states) > ACCOUNTS_PAGE_LIMIT else None
            ),
            first_page=cursor is None,
            plans=sorted(plans, key=lambda name: (plans[name], name)),
            limits=plans,
            viewer=viewer,
            changed=changed if changed and changed.startswith("acct_") else None,
            when=when,
            nav="operator",
        )

    @post("/accounts/{account_id:str}/plan")
    async def change_plan(
        self, account_id: FromPath[str], visit: NamedDependency[Visit], request: Request[Any, Any, Any]
    ) -> Redirect:
        _, session = await visit.require(ACCOUNTS_MANAGE)
        command = ChangePlan(account_id=account_id, plan=text(await form_of(request), "plan"))
        await visit.application.execute(command, visit.metadata(session))
        return see_other(f"/dashboard/operator/accounts?changed={account_id}")
