"""Suspicious-usage flags: list them (own account with audit:read, every account with platform:admin)
and resolve one (an event recording who resolved it and why)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from reservekit.auth.key_view import CachedKey
from reservekit.clock import to_micros
from reservekit.db import read_transaction
from reservekit.detectors.rules import RULES, SEVERITIES, Severity
from reservekit.domain.errors import InvalidInput
from reservekit.events.types import Metadata
from reservekit.runtime import Runtime
from reservekit.usecases.flags import (
    FlagOut,
    FlagQuery,
    FlagStatus,
    Resolution,
    get_flag,
    list_flags,
    resolve_flag,
)
from reservekit.web.access import requires
from reservekit.web.pagination import MAX_PAGE, Page

AUDIT = requires("audit:read", "platform:admin")
# An unencoded "+" in a query string arrives as a space: "…T12:00:00 02:00" means "…T12:00:00+02:00".
_SPACE_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:\d{2})$")
_RULE_DOC = "one of: " + ", ".join(sorted(RULES))


class ResolveBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    resolution: Resolution
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


def _instant(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    text = _SPACE_OFFSET.sub(r"\1+\2", value.strip())
    try:
        moment = msgspec.convert(text, datetime)
    except msgspec.ValidationError:
        raise InvalidInput(
            f"{field} must be an RFC 3339 timestamp with an offset, e.g. 2026-06-01T12:00:00Z", field=field
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{field} needs a UTC offset (Z or ±HH:MM)", field=field)
    return to_micros(moment)


def _scope(caller: CachedKey, account_id: str | None = None) -> str | None:
    """platform:admin sees every account's flags (or one, if asked); anyone else only their own."""
    return account_id if caller.operator else caller.account_id


class AuditFlagsController(Controller):
    path = "/v1/audit/flags"
    tags = ["audit"]

    @get("/", opt=AUDIT, summary="Suspicious-usage flags, newest first, with their evidence")
    async def list(
        self,
        caller: NamedDependency[CachedKey],
        runtime: NamedDependency[Runtime],
        account_id: Annotated[str | None, Parameter(max_length=64, description="operators only")] = None,
        key_id: Annotated[str | None, Parameter(max_length=64)] = None,
        rule: Annotated[str | None, Parameter(max_length=64, description=_RULE_DOC)] = None,
        severity: Annotated[Severity | None, Parameter(description=", ".join(SEVERITIES))] = None,
        status: Annotated[FlagStatus | None, Parameter(description="open or resolved")] = None,
        since: Annotated[
            str | None, Parameter(max_length=64, description="RFC 3339: last hit at or after")
        ] = None,
        until: Annotated[
            str | None, Parameter(max_length=64, description="RFC 3339: first hit before")
        ] = None,
        cursor: Annotated[str | None, Parameter(max_length=128)] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = 50,
    ) -> Page[FlagOut]:
        if rule is not None and rule not in RULES:
            raise InvalidInput(f"rule must be {_RULE_DOC}", field="rule")
        query = FlagQuery(
            account_id=_scope(caller, account_id),
            key_id=key_id,
            rule=rule,
            severity=severity,
            status=status,
            since_us=_instant(since, "since"),
            until_us=_instant(until, "until"),
        )
        async with read_transaction(runtime.engine) as conn:
            flags, next_cursor = await list_flags(conn, query, cursor=cursor, limit=limit)
        return Page(data=flags, next_cursor=next_cursor)

    @get("/{flag_id:str}", opt=AUDIT, summary="One flag with its evidence")
    async def read(
        self, flag_id: FromPath[str], caller: NamedDependency[CachedKey], runtime: NamedDependency[Runtime]
    ) -> FlagOut:
        async with read_transaction(runtime.engine) as conn:
            return await get_flag(conn, flag_id, account_id=_scope(caller))

    @post(
        "/{flag_id:str}/resolve",
        opt=AUDIT,
        status_code=200,
        summary="Resolve a flag (false_positive, confirmed or mitigated); recurring hits reopen it",
    )
    async def resolve(
        self,
        flag_id: FromPath[str],
        data: JSONBody[ResolveBody],
        caller: NamedDependency[CachedKey],
        runtime: NamedDependency[Runtime],
        metadata: NamedDependency[Metadata],
    ) -> FlagOut:
        await resolve_flag(
            runtime.authority,
            flag_id=flag_id,
            account_id=_scope(caller),
            resolution=data.resolution,
            note=data.note,
            metadata=metadata,
        )
        await runtime.refresh_projections(lifecycle_only=True)
        async with read_transaction(runtime.engine) as conn:
            return await get_flag(conn, flag_id, account_id=_scope(caller))
