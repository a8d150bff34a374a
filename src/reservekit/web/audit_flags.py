"""Suspicious-usage flags: list them (own account with audit:read, every account with platform:admin)
and resolve one (an event recording who resolved it and why)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from reservekit.audit.flags import FlagOut, FlagQuery, FlagStatus, get_flag, list_flags
from reservekit.clock import to_micros
from reservekit.db import read_transaction
from reservekit.detectors.rules import RULES, SEVERITIES, Severity
from reservekit.usecases.commands import ResolveFlag
from reservekit.usecases.flags import Resolution
from reservekit.web.access import requires
from reservekit.web.deps import ApiCall
from reservekit.web.pagination import Cursor, Page, flag_after, next_cursor
from reservekit.web.params import IdFilter, Limit, optional_instant
from reservekit.web.problems import InvalidParameter

AUDIT = requires("audit:read", "platform:admin")
SINCE_DOC = "RFC 3339 with an offset: flags whose last hit is at or after"
UNTIL_DOC = "RFC 3339 with an offset: flags whose first hit is before"
_RULE_DOC = "one of: " + ", ".join(sorted(RULES))


class ResolveBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    resolution: Resolution
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


def _micros(value: str | None, field: str) -> int | None:
    moment = optional_instant(value, field)
    return None if moment is None else to_micros(moment)


class AuditFlagsController(Controller):
    path = "/v1/audit/flags"
    tags = ["audit"]

    @get("/", opt=AUDIT, summary="Suspicious-usage flags, newest first, with their evidence")
    async def list(
        self,
        call: NamedDependency[ApiCall],
        account_id: Annotated[str | None, Parameter(max_length=64, description="operators only")] = None,
        key_id: IdFilter = None,
        rule: Annotated[str | None, Parameter(max_length=64, description=_RULE_DOC)] = None,
        severity: Annotated[Severity | None, Parameter(description=", ".join(SEVERITIES))] = None,
        status: Annotated[FlagStatus | None, Parameter(description="open or resolved")] = None,
        since: Annotated[
            str | None, Parameter(max_length=64, description="RFC 3339: last hit at or after")
        ] = None,
        until: Annotated[
            str | None, Parameter(max_length=64, description="RFC 3339: first hit before")
        ] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[FlagOut]:
        if rule is not None and rule not in RULES:
            raise InvalidParameter(f"rule must be {_RULE_DOC}", field="rule")
        query = FlagQuery(
            account_id=call.visible_account(account_id),
            key_id=key_id,
            rule=rule,
            severity=severity,
            status=status,
            since_us=_micros(since, "since"),
            until_us=_micros(until, "until"),
        )
        async with read_transaction(call.engine) as conn:
            flags, next_position = await list_flags(conn, query, after=flag_after(cursor), limit=limit)
        return Page(data=flags, next_cursor=next_cursor("flags", next_position))

    @get("/{flag_id:str}", opt=AUDIT, summary="One flag with its evidence")
    async def read(self, flag_id: FromPath[str], call: NamedDependency[ApiCall]) -> FlagOut:
        async with read_transaction(call.engine) as conn:
            return await get_flag(conn, flag_id, account_id=call.visible_account())

    @post(
        "/{flag_id:str}/resolve",
        opt=AUDIT,
        status_code=200,
        summary="Resolve a flag (false_positive, confirmed or mitigated); recurring hits reopen it",
    )
    async def resolve(
        self, flag_id: FromPath[str], data: JSONBody[ResolveBody], call: NamedDependency[ApiCall]
    ) -> FlagOut:
        command = ResolveFlag(
            flag_id=flag_id, account_id=call.visible_account(), resolution=data.resolution, note=data.note
        )
        await call.application.execute(command, call.metadata)
        async with read_transaction(call.engine) as conn:
            return await get_flag(conn, flag_id, account_id=call.visible_account())
