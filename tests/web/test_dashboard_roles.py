"""Every dashboard page and action, for every role: allowed, or a 403 page that writes nothing.

The expectations are written out here, not read from ``domain/roles.py``: this table is the spec the
pages are held to. An allowed action is sent with input it refuses (a missing id, a bad field), so an
allowed cell answers 404/422/400 — proof the role check let it through — and nothing is ever written.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
from litestar import Litestar

from reservekit.domain.events import Metadata
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.usecases.commands import OpenAccount
from reservekit.webhooks import endpoints
from tests.web.conftest import Client, event_count
from tests.web.dashboard_helpers import csrf_of
from tests.web.team_helpers import add_member, signed_in

OWNER, DEV, AUDITOR, OP_OWNER, OP_AUDITOR = "owner", "developer", "auditor", "op-owner", "op-auditor"
EVERYONE = {OWNER, DEV, AUDITOR, OP_OWNER, OP_AUDITOR}
OWNERS = {OWNER, OP_OWNER}
KEY_MANAGERS = {OWNER, DEV, OP_OWNER}
OPERATORS = {OP_OWNER, OP_AUDITOR}
SECURITY = {OWNER, AUDITOR, OP_OWNER, OP_AUDITOR}

# (method, path, form fields, who may, what an allowed visit answers)
TABLE: list[tuple[str, str, dict[str, str], set[str], int]] = [
    ("GET", "/dashboard/keys/", {}, EVERYONE, 200),
    ("GET", "/dashboard/keys/{key}", {}, EVERYONE, 200),
    ("GET", "/dashboard/keys/new", {}, KEY_MANAGERS, 200),
    ("GET", "/dashboard/keys/{key}/revoke", {}, KEY_MANAGERS, 200),
    ("POST", "/dashboard/keys/", {"domains": "https://bad domain/"}, KEY_MANAGERS, 422),
    ("POST", "/dashboard/keys/key_nope", {}, KEY_MANAGERS, 404),
    ("POST", "/dashboard/keys/key_nope/rotate", {}, KEY_MANAGERS, 404),
    ("POST", "/dashboard/keys/key_nope/revoke", {}, KEY_MANAGERS, 404),
    ("GET", "/dashboard/account", {}, EVERYONE, 200),
    ("GET", "/dashboard/usage/", {}, EVERYONE, 200),
    ("GET", "/dashboard/usage/{key}", {}, EVERYONE, 200),
    ("GET", "/dashboard/security/", {}, SECURITY, 200),
    ("GET", "/dashboard/security/trail", {}, SECURITY, 200),
    ("GET", "/dashboard/security/keys-as-of", {}, SECURITY, 200),
    ("POST", "/dashboard/security/verify", {}, SECURITY, 200),
    ("POST", "/dashboard/security/export", {"since": "not a time"}, SECURITY, 400),
    ("POST", "/dashboard/security/flags/flag_nope/resolve", {"resolution": "false_positive"}, SECURITY, 404),
    ("GET", "/dashboard/team/", {}, EVERYONE, 200),
    ("POST", "/dashboard/team/invitations", {"email": "bad", "role": "auditor"}, OWNERS, 422),
    ("POST", "/dashboard/team/invitations/inv_nope/withdraw", {}, OWNERS, 404),
    ("GET", "/dashboard/team/members/mem_nope/remove", {}, OWNERS, 404),
    ("POST", "/dashboard/team/members/mem_nope/remove", {}, OWNERS, 404),
    ("POST", "/dashboard/team/members/mem_nope/role", {"role": "auditor"}, OWNERS, 404),
    ("GET", "/dashboard/webhooks/", {}, EVERYONE, 200),
    ("GET", "/dashboard/webhooks/{endpoint}", {}, EVERYONE, 200),
    ("GET", "/dashboard/webhooks/new", {}, OWNERS, 200),
    ("GET", "/dashboard/webhooks/{endpoint}/delete", {}, OWNERS, 200),
    ("POST", "/dashboard/webhooks/", {"url": "ftp://x", "event_types": "key.created"}, OWNERS, 422),
    ("POST", "/dashboard/webhooks/whe_nope/enabled", {"enabled": "false"}, OWNERS, 404),
    ("POST", "/dashboard/webhooks/whe_nope/roll-secret", {}, OWNERS, 404),
    ("POST", "/dashboard/webhooks/whe_nope/delete", {}, OWNERS, 404),
    ("POST", "/dashboard/webhooks/whe_nope/test", {}, OWNERS, 404),
    ("POST", "/dashboard/webhooks/whe_nope/deliveries/msg_nope/retry", {}, OWNERS, 404),
    ("GET", "/dashboard/operator/accounts", {}, OPERATORS, 200),
    ("POST", "/dashboard/operator/accounts/acct_nope/plan", {"plan": "pro"}, {OP_OWNER}, 404),
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    import msgspec

    return msgspec.structs.replace(settings, webhooks_allow_loopback=True)


async def _account(runtime: Runtime, name: str, *, operator: bool) -> tuple[str, str, str]:
    opened = await runtime.application.execute(
        OpenAccount(name=name, operator=operator), Metadata(source="cli")
    )
    account_id = opened.account.account_id
    endpoint = await endpoints.create_endpoint(
        runtime.webhooks,
        account_id=account_id,
        url="http://127.0.0.1:9/hooks",
        event_types=["key.created"],
        metadata=Metadata(source="cli"),
    )
    return account_id, opened.first_key.key.key_id, endpoint.endpoint.endpoint_id


async def test_every_page_and_action_answers_each_role_as_the_table_says(
    client: Client, app: Litestar, runtime: Runtime
) -> None:
    acme, acme_key, acme_endpoint = await _account(runtime, "Acme", operator=False)
    ops, ops_key, ops_endpoint = await _account(runtime, "Ops", operator=True)
    viewers = {
        OWNER: (acme, acme_key, acme_endpoint, "owner"),
        DEV: (acme, acme_key, acme_endpoint, "developer"),
        AUDITOR: (acme, acme_key, acme_endpoint, "auditor"),
        OP_OWNER: (ops, ops_key, ops_endpoint, "owner"),
        OP_AUDITOR: (ops, ops_key, ops_endpoint, "auditor"),
    }
    for name, (account_id, _, _, role) in viewers.items():
        await add_member(runtime, account_id, f"{name}@example.com", role)
    await runtime.refresh_projections()
    wrong: list[str] = []
    async with AsyncExitStack() as stack:
        for name, (_, key_id, endpoint_id, _) in viewers.items():
            browser = await signed_in(stack, app, f"{name}@example.com")
            token = csrf_of((await browser.get("/dashboard/account")).text)
            for method, template, fields, allowed, answer in TABLE:
                path = template.format(key=key_id, endpoint=endpoint_id)
                before = await event_count(runtime)
                if method == "GET":
                    response = await browser.get(path)
                else:
                    response = await browser.post(path, data={"_csrf_token": token, **fields})
                expected = answer if name in allowed else 403
                if response.status_code != expected:
                    wrong.append(f"{name} {method} {path}: {response.status_code}, expected {expected}")
                if expected == 403 and "Not allowed" not in response.text:
                    wrong.append(f"{name} {method} {path}: no 'Not allowed' page")
                if await event_count(runtime) != before:
                    wrong.append(f"{name} {method} {path}: wrote an event")
    assert wrong == []
