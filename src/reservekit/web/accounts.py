"""Operators manage accounts: open one (with its first key), read it, change its plan."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from projections import accounts
from reservekit.db import read_transaction
from reservekit.schemas import AccountOut, AccountWithKey, account_out, key_with_secret
from reservekit.usecases.commands import ChangePlan, OpenAccount
from reservekit.web.access import requires
from reservekit.web.deps import ApiCall
from reservekit.web.pagination import Cursor, Page, id_after, next_cursor
from reservekit.web.params import Limit
from reservekit.web.secrets import created_with_secret

ADMIN = requires("platform:admin")


class OpenAccountBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    plan: str = "free"
    operator: bool = False


class ChangePlanBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    plan: str


class AccountsController(Controller):
    path = "/v1/accounts"
    tags = ["accounts"]

    @post("/", opt=ADMIN, summary="Open an account; its first key's secret is returned this once")
    async def open(
        self, data: JSONBody[OpenAccountBody], call: NamedDependency[ApiCall]
    ) -> Response[AccountWithKey]:
        command = OpenAccount(name=data.name, plan=data.plan, operator=data.operator)
        opened = await call.application.execute(command, call.metadata)
        first = opened.first_key
        body = AccountWithKey(
            account=account_out(opened.account),
            key=key_with_secret(first.key, first.secret, now=call.clock.now()),
        )
        return created_with_secret(body, f"/v1/accounts/{body.account.id}")

    @get("/", opt=ADMIN, summary="List every account (operators only), in id order")
    async def list(
        self, call: NamedDependency[ApiCall], cursor: Cursor = None, limit: Limit = 50
    ) -> Page[AccountOut]:
        async with read_transaction(call.engine) as conn:
            states = await accounts.list_accounts(conn, after=id_after("accounts", cursor), limit=limit + 1)
        page = [account_out(state) for state in states[:limit]]
        return Page(
            data=page, next_cursor=next_cursor("accounts", page[-1].id if len(states) > limit else None)
        )

    @get("/{account_id:str}", opt=ADMIN, summary="Read an account")
    async def read(self, account_id: FromPath[str], call: NamedDependency[ApiCall]) -> AccountOut:
        return account_out(await call.application.account(account_id))

    @patch("/{account_id:str}", opt=ADMIN, summary="Change an account's plan (takes effect at once)")
    async def change_plan(
        self, account_id: FromPath[str], data: JSONBody[ChangePlanBody], call: NamedDependency[ApiCall]
    ) -> AccountOut:
        command = ChangePlan(account_id=account_id, plan=data.plan)
        return account_out(await call.application.execute(command, call.metadata))
