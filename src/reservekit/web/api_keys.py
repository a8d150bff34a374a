"""The caller's own account's keys: create (secret once), list, read, revoke, rotate."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from projections import api_keys, key_usage
from reservekit.db import read_transaction
from reservekit.domain.keys import MAX_GRACE_SECONDS
from reservekit.schemas import KeyOut, KeyWithSecret, key_out, key_with_secret
from reservekit.usecases.commands import CreateKey, RevokeKey, RotateKey, UpdateKey
from reservekit.web.access import requires
from reservekit.web.deps import ApiCall
from reservekit.web.pagination import Cursor, Page, id_after, next_cursor
from reservekit.web.params import Limit
from reservekit.web.secrets import created_with_secret


class CreateKeyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    domains: Annotated[list[str], msgspec.Meta(max_length=50)] | None = None
    scopes: Annotated[list[str], msgspec.Meta(max_length=20)] | None = None
    expires_at: datetime | None = None


class UpdateKeyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Only the fields sent change; ``"expires_at": null`` removes the expiry."""

    name: Annotated[str, msgspec.Meta(max_length=200)] | msgspec.UnsetType | None = msgspec.UNSET
    domains: Annotated[list[str], msgspec.Meta(max_length=50)] | msgspec.UnsetType = msgspec.UNSET
    scopes: Annotated[list[str], msgspec.Meta(max_length=20)] | msgspec.UnsetType = msgspec.UNSET
    expires_at: datetime | msgspec.UnsetType | None = msgspec.UNSET


class RevokeBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class RotateBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    grace_period_seconds: Annotated[int, msgspec.Meta(ge=0, le=MAX_GRACE_SECONDS)] = 0


class ApiKeysController(Controller):
    path = "/v1/api-keys"
    tags = ["api-keys"]

    @post("/", opt=requires("keys:write"), summary="Create a key; its secret is returned this once")
    async def create(
        self, call: NamedDependency[ApiCall], data: JSONBody[CreateKeyBody | None] = None
    ) -> Response[KeyWithSecret]:
        data = data or CreateKeyBody()
        command = CreateKey(
            account_id=call.caller.account_id,
            name=data.name,
            domains=data.domains,
            scopes=data.scopes,
            expires_at=data.expires_at,
            grantable=call.caller.scopes,
        )
        issued = await call.application.execute(command, call.metadata)
        body = key_with_secret(issued.key, issued.secret, now=call.clock.now())
        return created_with_secret(body, f"/v1/api-keys/{body.id}")

    @get("/", opt=requires("keys:read"), summary="List the account's keys (never their secrets)")
    async def list(
        self, call: NamedDependency[ApiCall], cursor: Cursor = None, limit: Limit = 50
    ) -> Page[KeyOut]:
        account_id = call.caller.account_id
        async with read_transaction(call.engine) as conn:
            states = await api_keys.list_for_account(
                conn, account_id, after=id_after("api_keys", cursor), limit=limit + 1
            )
            used = await key_usage.last_used_at(conn, [state.key_id for state in states[:limit]])
        now = call.clock.now()
        page = [key_out(state, now=now, last_used_at=used.get(state.key_id)) for state in states[:limit]]
        return Page(
            data=page, next_cursor=next_cursor("api_keys", page[-1].id if len(states) > limit else None)
        )

    @get("/{key_id:str}", opt=requires("keys:read"), summary="Read one key (never its secret)")
    async def read(self, key_id: FromPath[str], call: NamedDependency[ApiCall]) -> KeyOut:
        state = await call.application.key(key_id, account_id=call.caller.account_id)
        async with read_transaction(call.engine) as conn:
            used = await key_usage.last_used_at(conn, [state.key_id])
        return key_out(state, now=call.clock.now(), last_used_at=used.get(state.key_id))

    @patch(
        "/{key_id:str}",
        opt=requires("keys:write"),
        summary="Change a key's name, domains, scopes or expiry; holds on every replica like a revocation",
    )
    async def update(
        self, key_id: FromPath[str], data: JSONBody[UpdateKeyBody], call: NamedDependency[ApiCall]
    ) -> KeyOut:
        current = await call.application.key(key_id, account_id=call.caller.account_id)
        command = UpdateKey(
            account_id=call.caller.account_id,
            key_id=key_id,
            name=current.name if data.name is msgspec.UNSET else data.name,
            domains=list(current.domains) if data.domains is msgspec.UNSET else data.domains,
            scopes=list(current.scopes) if data.scopes is msgspec.UNSET else data.scopes,
            expires_at=current.expires_at if data.expires_at is msgspec.UNSET else data.expires_at,
            grantable=call.caller.scopes,
        )
        state = await call.application.execute(command, call.metadata)
        return key_out(state, now=call.clock.now())

    @post("/{key_id:str}/revoke", opt=requires("keys:write"), status_code=200, summary="Revoke a key at once")
    async def revoke(
        self, key_id: FromPath[str], call: NamedDependency[ApiCall], data: JSONBody[RevokeBody | None] = None
    ) -> KeyOut:
        command = RevokeKey(
            account_id=call.caller.account_id, key_id=key_id, reason=data.reason if data else None
        )
        state = await call.application.execute(command, call.metadata)
        return key_out(state, now=call.clock.now())

    @post(
        "/{key_id:str}/rotate",
        opt=requires("keys:write"),
        summary="Issue a replacement (secret once); the old key works until the grace period ends",
    )
    async def rotate(
        self, key_id: FromPath[str], call: NamedDependency[ApiCall], data: JSONBody[RotateBody | None] = None
    ) -> Response[KeyWithSecret]:
        command = RotateKey(
            account_id=call.caller.account_id,
            key_id=key_id,
            grace_period_seconds=data.grace_period_seconds if data else 0,
        )
        rotated = await call.application.execute(command, call.metadata)
        body = key_with_secret(rotated.new.key, rotated.new.secret, now=call.clock.now())
        return created_with_secret(body, f"/v1/api-keys/{body.id}")
