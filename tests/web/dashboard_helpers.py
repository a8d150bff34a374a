"""Drive the dashboard's forms over HTTP like a browser would: cookies, the CSRF field, form posts."""

from __future__ import annotations

import re

import httpx

CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')
FORM_ID = re.compile(r'name="form_id" value="([^"]+)"')
SECRET = re.compile(r'id="secret"[^>]*value="(sk_rsv_[A-Za-z0-9]+)"')
PASSWORD = "correct horse battery staple"


def form_id_of(html: str) -> str:
    """The one-shot form id a page was rendered with (it carries the time it was shown)."""
    match = FORM_ID.search(html)
    assert match, "the page has no form_id field"
    return match.group(1)


def csrf_of(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def submit(
    client: httpx.AsyncClient, page: str, action: str, fields: dict[str, str | list[str]]
) -> httpx.Response:
    """GET ``page`` (sets the CSRF cookie, gives the token and any form id), then POST ``action``."""
    shown = await client.get(page)
    body: dict[str, str | list[str]] = {"_csrf_token": csrf_of(shown.text), **fields}
    form_id = FORM_ID.search(shown.text)
    if form_id and "form_id" not in fields:
        body["form_id"] = form_id.group(1)
    return await client.post(action, data=body)


async def sign_up(client: httpx.AsyncClient, email: str = "ada@example.com") -> httpx.Response:
    response = await submit(
        client, "/dashboard/signup", "/dashboard/signup", {"email": email, "password": PASSWORD}
    )
    assert response.status_code == 303, response.text
    return response


async def generate(client: httpx.AsyncClient, **fields: str | list[str]) -> str:
    response = await submit(client, "/dashboard/keys/new", "/dashboard/keys/", fields)
    assert response.status_code == 201, response.text
    match = SECRET.search(response.text)
    assert match
    return match.group(1)
