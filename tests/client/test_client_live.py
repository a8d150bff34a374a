"""The client against a real ``reservekit serve`` on loopback, on both backends."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from reservekit_client import (
    AsyncReserveKitClient,
    AuthenticationError,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    Position,
    ReserveKitClient,
)
from reservekit_client.models import KeyChange
from tests.client.conftest import LiveAuthority, Operator


def test_the_sync_client_covers_every_operation(authority: LiveAuthority, operator: Operator) -> None:
    with ReserveKitClient(authority.url, operator.secret) as ops:
        opened = ops.open_account("Acme", plan="pro")
        assert opened.account.plan == "pro"
        assert opened.key.secret.startswith("sk_rsv_")
        assert opened.key.secret not in repr(opened.key)
        assert ops.get_account(opened.account.id).name == "Acme"
        assert ops.change_plan(opened.account.id, "enterprise").plan == "enterprise"
        assert {a.id for a in ops.iter_accounts(page_size=1)} == {operator.account_id, opened.account.id}
    with ReserveKitClient(authority.url, opened.key.secret) as rk:
        made = [rk.create_key(name=f"k{n}", scopes=["services:read"]) for n in range(3)]
        assert [k.id for k in rk.iter_keys(page_size=2)] == sorted([opened.key.id, *(k.id for k in made)])
        assert rk.list_keys(limit=1).next_cursor is not None
        assert rk.get_key(made[0].id).scopes == ["services:read"]
        rotated = rk.rotate_key(made[1].id, grace_period_seconds=60)
        assert rotated.rotated_from == made[1].id
        assert rk.revoke_key(made[0].id, reason="test").status == "revoked"
        assert rk.key_usage(opened.key.id, bucket="hour").key_id == opened.key.id

        services = [rk.create_service(f"Cut {n}", 30 + n) for n in range(3)]
        assert [s.id for s in rk.iter_services(page_size=2)] == sorted(s.id for s in services)
        changed = rk.update_service(services[0].id, description="short")
        assert (changed.description, rk.get_service(services[0].id).description) == ("short", "short")
        rk.delete_service(services[2].id)
        with pytest.raises(NotFound) as missing:
            rk.get_service(services[2].id)
        assert (missing.value.status, missing.value.code) == (404, "not_found")
        assert str(missing.value.request_id).startswith("req_")
        with pytest.raises(InvalidRequest) as bad:
            rk.create_service("", 30)
        assert bad.value.field == "name"
        with pytest.raises(PermissionDenied) as denied:
            rk.open_account("Nope")
        assert denied.value.code == "scope_denied"

        events = list(rk.iter_audit_events(page_size=3))
        assert [e.position for e in events] == sorted(e.position for e in events)
        assert {"key_created", "key_rotated", "key_revoked"} <= {e.type for e in events}
        # Usage rows are written in batches: wait until at least 10 are there, read 3 per page.
        usage = _wait_for(lambda: rows if len(rows := list(rk.iter_audit_usage(page_size=3))) >= 10 else None)
        assert [r.position for r in usage] == sorted(r.position for r in usage)
        assert rk.verify_chain().ok
        as_of = rk.keys_as_of(datetime.now(UTC))
        assert {k.id for k in as_of.data} >= {made[0].id, made[2].id}
        leaked = rk.create_key(name="leaky")
        assert rk.report_leak(leaked.secret).status == "received"
        flag = _wait_for(lambda: next(iter(rk.iter_flags(rule="leaked_key_reported")), None))
        assert flag.key_id == leaked.id
        assert rk.get_flag(flag.id).id == flag.id
        assert rk.resolve_flag(flag.id, "confirmed", note="rotated").status == "resolved"
    with (
        pytest.raises(AuthenticationError) as refused,
        ReserveKitClient(authority.url, leaked.secret) as gone,
    ):
        gone.list_services()
    assert refused.value.code == "api_key_revoked"


async def test_the_async_client_verifies_and_follows_the_feed(
    authority: LiveAuthority, operator: Operator
) -> None:
    async with AsyncReserveKitClient(authority.url, operator.secret) as ops:
        opened = await ops.open_account("Acme")
        async with AsyncReserveKitClient(authority.url, opened.key.secret) as rk:
            victim = await rk.create_key(name="victim")
            ids = [k.id async for k in rk.iter_keys(page_size=1)]
            assert ids == sorted([opened.key.id, victim.id])
            answer = await ops.verify_key(victim.secret, origin="https://x.example", client_ip="192.0.2.1")
            assert (answer.valid, answer.key_id, answer.account_id) == (True, victim.id, opened.account.id)
            head = (await ops.poll_changes(wait=0)).next
            seen: list[KeyChange] = []

            async def follow() -> None:
                async for item in ops.stream_changes(after=head):
                    if isinstance(item, KeyChange):
                        seen.append(item)
                        return
                    assert isinstance(item, Position)

            follower = asyncio.create_task(follow())
            await asyncio.sleep(0.3)
            await rk.revoke_key(victim.id)
            await asyncio.wait_for(follower, 5)
            assert [(c.type, c.key_id) for c in seen] == [("key_revoked", victim.id)]
            page = await ops.poll_changes(after=head, wait=0)
            assert [(c.type, c.key_id) for c in page.changes] == [("key_revoked", victim.id)]
            revoked = await ops.verify_key(victim.secret)
            assert (revoked.valid, revoked.code, revoked.title) == (
                False,
                "api_key_revoked",
                "API key revoked",
            )
            await rk.rotate_key(opened.key.id, grace_period_seconds=0)
            with pytest.raises((AuthenticationError, Conflict)):
                await rk.rotate_key(opened.key.id)


def _wait_for(probe, within: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.1)
    raise AssertionError("not seen in time")
