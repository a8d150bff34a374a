"""The scheduling resource the keys protect: services (name, duration, description), per account."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from reservekit import scheduling
from reservekit.domain.errors import InvalidInput
from reservekit.scheduling import Service
from reservekit.web.access import requires
from reservekit.web.deps import ApiCall
from reservekit.web.pagination import Cursor, Page, id_after, next_cursor
from reservekit.web.params import Limit

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Duration = Annotated[int, msgspec.Meta(ge=1, le=24 * 60)]
Description = Annotated[str, msgspec.Meta(max_length=2000)]


class CreateServiceBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    duration_minutes: Duration
    description: Description | None = None


class UpdateServiceBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    duration_minutes: Duration | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET


class ServicesController(Controller):
    path = "/v1/services"
    tags = ["services"]

    @get("/", opt=requires("services:read"), summary="List the account's services")
    async def list(
        self,
        call: NamedDependency[ApiCall],
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[Service]:
        rows = await scheduling.list_services(
            call.engine, call.caller.account_id, after=id_after("services", cursor), limit=limit + 1
        )
        return Page(
            data=rows[:limit],
            next_cursor=next_cursor("services", rows[limit - 1].id if len(rows) > limit else None),
        )

    @post("/", opt=requires("services:write"), summary="Create a service")
    async def create(
        self,
        data: JSONBody[CreateServiceBody],
        call: NamedDependency[ApiCall],
    ) -> Service:
        return await scheduling.create_service(
            call.engine,
            call.caller.account_id,
            name=data.name.strip() or _blank("name"),
            duration_minutes=data.duration_minutes,
            description=data.description,
            now=call.clock.now(),
        )

    @get("/{service_id:str}", opt=requires("services:read"), summary="Read a service")
    async def read(self, service_id: FromPath[str], call: NamedDependency[ApiCall]) -> Service:
        return await scheduling.get_service(call.engine, call.caller.account_id, service_id)

    @patch("/{service_id:str}", opt=requires("services:write"), summary="Change a service's fields")
    async def update(
        self,
        service_id: FromPath[str],
        data: JSONBody[UpdateServiceBody],
        call: NamedDependency[ApiCall],
    ) -> Service:
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        if isinstance(changes.get("name"), str) and not str(changes["name"]).strip():
            _blank("name")
        return await scheduling.update_service(
            call.engine, call.caller.account_id, service_id, changes, call.clock.now()
        )

    @delete("/{service_id:str}", opt=requires("services:write"), summary="Delete a service")
    async def remove(self, service_id: FromPath[str], call: NamedDependency[ApiCall]) -> None:
        await scheduling.delete_service(call.engine, call.caller.account_id, service_id)


def _blank(field: str) -> str:
    raise InvalidInput(f"{field} must not be blank", field=field)
