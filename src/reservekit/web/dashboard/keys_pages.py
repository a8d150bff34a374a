"""The API Keys page: list, generate (secret once), a key's page, edit, rotate, revoke.

Every write is a command through the application service, exactly like the API's and the CLI's. A
secret appears only in the response to the POST that made it: never stored, never in a URL, marked
``no-store``; and a one-shot form id means a reload or Back cannot mint a second key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from projections import api_keys, key_usage
from reservekit.db import read_transaction
from reservekit.domain.errors import DomainError
from reservekit.domain.keys import KeyState
from reservekit.domain.roles import KEYS_MANAGE, KEYS_VIEW
from reservekit.domain.scopes import ACCOUNT_SCOPES
from reservekit.members.directory import ActiveSession
from reservekit.usecases.commands import CreateKey, RevokeKey, RotateKey, UpdateKey
from reservekit.web.dashboard.pages import (
    badge,
    form_of,
    lines,
    parse_expiry,
    render,
    see_other,
    text,
    when,
)
from reservekit.web.dashboard.visit import Visit

GRACE_CHOICES: tuple[tuple[int, str], ...] = (
    (0, "None: the old key stops now"),
    (3600, "1 hour"),
    (86_400, "24 hours"),
    (604_800, "7 days"),
)
KEYS_PAGE_LIMIT = 500


def _key_form(form: FormMultiDict) -> dict[str, Any]:
    return {
        "name": text(form, "name") or None,
        "domains": lines(text(form, "domains")),
        "scopes": [s for s in form.getall("scopes", []) if isinstance(s, str)],
        "expires_at": parse_expiry(text(form, "expires_on")),
    }


def _draft(values: dict[str, Any]) -> dict[str, Any]:
    """What the form shows again after a refusal (the member's input, not the stored key)."""
    expires: datetime | None = values["expires_at"]
    return {
        "name": values["name"] or "",
        "domains": "\n".join(values["domains"]),
        "scopes": values["scopes"],
        "expires_on": expires.strftime("%Y-%m-%d") if expires and expires.year > 1970 else "",
    }


def _draft_of(state: KeyState) -> dict[str, Any]:
    return {
        "name": state.name or "",
        "domains": "\n".join(state.domains),
        "scopes": list(state.scopes),
        "expires_on": state.expires_at.strftime("%Y-%m-%d") if state.expires_at else "",
    }


class KeysPages(Controller):
    path = "/keys"

    @get("/")
    async def index(self, visit: NamedDependency[Visit]) -> Template:
        _, session = await visit.require(KEYS_VIEW)
        async with read_transaction(visit.engine) as conn:
            states = await api_keys.list_for_account(conn, session.account_id, limit=KEYS_PAGE_LIMIT)
            used = await key_usage.last_used_at(conn, [s.key_id for s in states])
        now = visit.clock.now()
        # Newest first; revoked keys stay listed, marked revoked.
        states.sort(key=lambda s: s.created_at, reverse=True)
        rows = [{"key": s, "badge": badge(s, now), "last_used": used.get(s.key_id)} for s in states]
        return render("keys.html", title="API Keys", rows=rows, when=when, nav="keys")

    @get("/new")
    async def new(self, visit: NamedDependency[Visit]) -> Template:
        await visit.require(KEYS_MANAGE)
        draft = {"name": "", "domains": "", "scopes": list(ACCOUNT_SCOPES), "expires_on": ""}
        return self._new_form(visit, draft, {}, status=200)

    def _new_form(
        self, visit: Visit, draft: dict[str, Any], errors: dict[str, str], *, status: int
    ) -> Template:
        return render(
            "key_new.html",
            status=status,
            title="Generate a new key",
            draft=draft,
            errors=errors,
            all_scopes=ACCOUNT_SCOPES,
            form_id=visit.new_form_id(),
            nav="keys",
        )

    @post("/")
    async def create(
        self, visit: NamedDependency[Visit], request: Request[Any, Any, Any]
    ) -> Template | Redirect:
        _, session = await visit.require(KEYS_MANAGE)
        form = await form_of(request)
        values = _key_form(form)
        command = CreateKey(account_id=session.account_id, **values)
        if not await visit.spend_form(text(form, "form_id")):
            return render("already_shown.html", status=409, title="Already submitted", nav="keys")
        try:
            issued = await visit.application.execute(command, visit.metadata(session))
        except DomainError as exc:
            return self._new_form(visit, _draft(values), {exc.field or "form": exc.message}, status=422)
        return render(
            "key_secret.html",
            status=201,
            title="Your new key",
            key=issued.key,
            secret=issued.secret,
            heading="Your new key",
            nav="keys",
        )

    async def _own_key(self, visit: Visit, session: ActiveSession, key_id: str) -> KeyState:
        """Another account's key raises NotFound: rendered as the same 404 page as a missing one."""
        return await visit.application.key(key_id, account_id=session.account_id)

    def _detail(
        self,
        visit: Visit,
        state: KeyState,
        last_used: datetime | None,
        *,
        draft: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
        saved: bool = False,
    ) -> Template:
        return render(
            "key_detail.html",
            status=status,
            title=state.name or state.key_id,
            key=state,
            badge=badge(state, visit.clock.now()),
            last_used=last_used,
            when=when,
            draft=draft or _draft_of(state),
            errors=errors or {},
            all_scopes=ACCOUNT_SCOPES,
            grace_choices=GRACE_CHOICES,
            form_id=visit.new_form_id(),
            saved=saved,
            nav="keys",
        )

    async def _last_used(self, visit: Visit, key_id: str) -> datetime | None:
        async with read_transaction(visit.engine) as conn:
            return (await key_usage.last_used_at(conn, [key_id])).get(key_id)

    @get("/{key_id:str}")
    async def detail(
        self, key_id: FromPath[str], visit: NamedDependency[Visit], saved: FromQuery[bool] = False
    ) -> Template:
        _, session = await visit.require(KEYS_VIEW)
        state = await self._own_key(visit, session, key_id)
        return self._detail(visit, state, await self._last_used(visit, key_id), saved=saved)

    @post("/{key_id:str}")
    async def edit(
        self, key_id: FromPath[str], visit: NamedDependency[Visit], request: Request[Any, Any, Any]
    ) -> Template | Redirect:
        _, session = await visit.require(KEYS_MANAGE)
        state = await self._own_key(visit, session, key_id)
        values = _key_form(await form_of(request))
        command = UpdateKey(account_id=session.account_id, key_id=key_id, **values)
        try:
            await visit.application.execute(command, visit.metadata(session))
        except DomainError as exc:
            return self._detail(
                visit,
                state,
                await self._last_used(visit, key_id),
                draft=_draft(values),
                errors={exc.field or "form": exc.message},
                status=422,
            )
        return see_other(f"/dashboard/keys/{key_id}?saved=true")

    @post("/{key_id:str}/rotate")
    async def rotate(
        self, key_id: FromPath[str], visit: NamedDependency[Visit], request: Request[Any, Any, Any]
    ) -> Template | Redirect:
        _, session = await visit.require(KEYS_MANAGE)
        state = await self._own_key(visit, session, key_id)
        form = await form_of(request)
        raw_grace = text(form, "grace_period_seconds")
        grace = int(raw_grace) if raw_grace.isdigit() else -1
        if not await visit.spend_form(text(form, "form_id")):
            return render("already_shown.html", status=409, title="Already submitted", nav="keys")
        command = RotateKey(account_id=session.account_id, key_id=key_id, grace_period_seconds=grace)
        try:
            rotated = await visit.application.execute(command, visit.metadata(session))
        except DomainError as exc:
            return self._detail(
                visit, state, await self._last_used(visit, key_id), errors={"rotate": exc.message}, status=409
            )
        return render(
            "key_secret.html",
            status=201,
            title="Your rotated key",
            key=rotated.new.key,
            secret=rotated.new.secret,
            heading="Your replacement key",
            old=rotated.old,
            when=when,
            nav="keys",
        )

    @get("/{key_id:str}/revoke")
    async def confirm_revoke(self, key_id: FromPath[str], visit: NamedDependency[Visit]) -> Template:
        _, session = await visit.require(KEYS_MANAGE)
        state = await self._own_key(visit, session, key_id)
        return render("key_revoke.html", title="Revoke key", key=state, nav="keys")

    @post("/{key_id:str}/revoke")
    async def revoke(
        self, key_id: FromPath[str], visit: NamedDependency[Visit], request: Request[Any, Any, Any]
    ) -> Redirect:
        _, session = await visit.require(KEYS_MANAGE)
        await self._own_key(visit, session, key_id)
        reason = text(await form_of(request), "reason") or "revoked from the dashboard"
        command = RevokeKey(account_id=session.account_id, key_id=key_id, reason=reason[:200])
        await visit.application.execute(command, visit.metadata(session))
        return see_other(f"/dashboard/keys/{key_id}")
