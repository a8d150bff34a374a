"""Rendering helpers shared by the dashboard's pages: templates, redirects, forms, dates."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from litestar import Request
from litestar.datastructures import FormMultiDict
from litestar.response import Redirect, Template

from reservekit.domain.keys import KeyState

NO_STORE = {"Cache-Control": "no-store"}


def render(template: str, status: int = 200, **context: Any) -> Template:
    """Every dashboard page is private to its member: never stored by the browser or a proxy."""
    return Template(template_name=template, context=context, status_code=status, headers=NO_STORE)


def see_other(path: str) -> Redirect:
    """303 after a POST: the browser follows with a GET, so reload never repeats the write."""
    return Redirect(path=path, status_code=303)


async def form_of(request: Request[Any, Any, Any]) -> FormMultiDict:
    return await request.form()


def text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def lines(raw: str) -> list[str]:
    """Domains, one per line (commas accepted too), blank lines ignored."""
    return [part.strip() for part in raw.replace(",", "\n").splitlines() if part.strip()]


def parse_expiry(raw: str) -> datetime | None:
    """``<input type="date">``: the key expires at the start of that day, UTC."""
    if not raw:
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d")
    except ValueError:
        return _INVALID_EXPIRY
    return day.replace(tzinfo=UTC)


_INVALID_EXPIRY = datetime(1970, 1, 1, tzinfo=UTC)  # in the past: the domain answers "must be in the future"


def badge(state: KeyState, now: datetime) -> str:
    status = state.status(now)
    if status == "active" and state.rotated_to is not None:
        return "rotating"
    return status


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "—"
