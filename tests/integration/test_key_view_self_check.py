"""Each replica compares its key view with the log, reports what differs and heals it (issue 16).

The defects are planted by hand (a cursor moved over an event it never applied, a wrong head hash, a
wrong plan): the self-check must find each one, count it, and leave the view equal to the log.
"""

from __future__ import annotations

import asyncio

import msgspec
from sqlalchemy import select

from reservekit.auth.key_view_follower import SelfCheck
from reservekit.domain.events import Metadata
from reservekit.events.tables import events
from reservekit.runtime import Runtime
from reservekit.settings import Settings
from reservekit.web.app import create_app
from tests.integration.conftest import authenticate
from tests.web.conftest import serving
from tests.writes import create_key, open_account, revoke_key

CLI = Metadata(source="cli")


async def _log_head(runtime: Runtime) -> tuple[int, str]:
    async with runtime.engine.connect() as conn:
        row = (
            await conn.execute(select(events.c.position, events.c.hash).order_by(events.c.position.desc()))
        ).first()
    assert row is not None
    return int(row.position), str(row.hash)


async def _skip_a_revocation(a: Runtime, b: Runtime) -> tuple[str, str]:
    """Plant issue 16's defect on B: its cursor passes A's revocation without applying it."""
    account, issued = await open_account(a, name="Acme", metadata=CLI)
    assert (await authenticate(b, issued.secret)).outcome == "ok"
    await revoke_key(a, account_id=account.account_id, key_id=issued.key.key_id, reason=None, metadata=CLI)
    await create_key(b, account_id=account.account_id, name="other", metadata=CLI)
    b.key_view.position, b.key_view.head_hash = await _log_head(b)  # what the old own-append path did
    assert (await authenticate(b, issued.secret)).outcome == "ok"  # the defect, as users saw it
    return account.account_id, issued.secret


async def test_a_skipped_revocation_is_found_by_comparing_keys_with_the_log_and_healed(
    replicas: tuple[Runtime, Runtime],
) -> None:
    a, b = replicas
    _, secret = await _skip_a_revocation(a, b)

    result = await b.key_view_checker.check()

    assert (result.keys_mismatched, result.cursor_ok, result.healed) == (1, True, True)
    assert (await authenticate(b, secret)).outcome == "revoked"
    text = b.metrics.render([], b.key_view.position).decode()
    assert 'reservekit_key_view_mismatches_total{kind="key"} 1.0' in text
    assert (await b.key_view_checker.check()).keys_mismatched == 0  # healed stays healed


async def test_a_cursor_the_log_does_not_continue_re_reads_from_the_last_verified_position(
    replicas: tuple[Runtime, Runtime],
) -> None:
    a, b = replicas
    account, issued = await open_account(a, name="Acme", metadata=CLI)
    assert (await authenticate(b, issued.secret)).outcome == "ok"
    verified = await b.key_view_checker.check()
    assert verified.cursor_ok
    assert b.key_view.verified_position == b.key_view.position

    await revoke_key(a, account_id=account.account_id, key_id=issued.key.key_id, reason=None, metadata=CLI)
    b.key_view.position, b.key_view.head_hash = b.key_view.position + 1, "f" * 64  # passed, never applied
    assert (await authenticate(b, issued.secret)).outcome == "ok"

    result = await b.key_view_checker.check()

    assert result.healed
    assert b.key_view_checker.cursor_mismatches == 1
    assert b.key_view.heals == 1
    assert result.cursor_ok  # after the heal the view continues the log again
    assert (await authenticate(b, issued.secret)).outcome == "revoked"
    assert (b.key_view.position, b.key_view.head_hash) == await _log_head(b)


async def test_a_chain_break_seen_while_tailing_is_healed_without_losing_the_event(
    replicas: tuple[Runtime, Runtime],
) -> None:
    a, b = replicas
    account, issued = await open_account(a, name="Acme", metadata=CLI)
    assert (await authenticate(b, issued.secret)).outcome == "ok"
    await b.key_view_checker.check()
    await revoke_key(a, account_id=account.account_id, key_id=issued.key.key_id, reason=None, metadata=CLI)
    b.key_view.head_hash = "e" * 64  # the next event read will not continue it

    await b.key_view.catch_up()

    assert b.key_view.mismatches == 1
    assert (await authenticate(b, issued.secret)).outcome == "revoked"


async def test_a_wrong_plan_in_memory_is_put_right(replicas: tuple[Runtime, Runtime]) -> None:
    a, b = replicas
    account, issued = await open_account(a, name="Acme", metadata=CLI)
    assert (await authenticate(b, issued.secret)).outcome == "ok"
    known_at, _ = dict(b.key_view.plans())[account.account_id]
    b.key_view.replace_plan(account.account_id, known_at, "enterprise")

    result = await b.key_view_checker.check()

    assert result.plans_mismatched == 1
    assert b.key_view.plan_of(account.account_id) == "free"


async def test_replicas_check_themselves_in_the_background_and_report_it(settings: Settings) -> None:
    fast = msgspec.structs.replace(settings, key_view_check_interval_seconds=0.05)
    app_a, app_b = create_app(fast), create_app(fast)
    async with serving(app_a) as client_a, serving(app_b) as client_b:
        a: Runtime = app_a.state.runtime
        b: Runtime = app_b.state.runtime
        del client_a
        account, issued = await open_account(a, name="Acme", metadata=CLI)
        assert (await authenticate(b, issued.secret)).outcome == "ok"
        await revoke_key(
            a, account_id=account.account_id, key_id=issued.key.key_id, reason=None, metadata=CLI
        )
        for _ in range(200):
            if (await authenticate(b, issued.secret)).outcome == "revoked":
                break
            await asyncio.sleep(0.01)
        entry = b.key_view.get(b.application.deps.hasher.digest(issued.secret))
        assert entry is not None
        entry.revoked = False  # a lost revocation that no tailer will ever re-read
        for _ in range(200):
            if b.key_view_checker.keys_mismatched:
                break
            await asyncio.sleep(0.02)
        assert b.key_view_checker.keys_mismatched == 1
        assert (await authenticate(b, issued.secret)).outcome == "revoked"

        ready = (await client_b.get("/readyz")).json()
        assert ready["key_view"]["mismatches"] == 1
        assert ready["key_view"]["last_check_ok"] is True
        assert ready["key_view"]["lag"] == 0
        metrics = (await client_b.get("/metrics")).text
        assert 'reservekit_key_view_mismatches_total{kind="key"} 1.0' in metrics
        assert "reservekit_key_view_lag 0.0" in metrics


async def test_readiness_fails_while_the_last_self_check_could_not_heal_the_view(
    settings: Settings,
) -> None:
    app = create_app(settings)
    async with serving(app) as client:
        runtime: Runtime = app.state.runtime
        assert (await client.get("/readyz")).status_code == 200
        runtime.key_view_checker.last = SelfCheck(
            checked_at=0.0,
            position=0,
            log_head=0,
            cursor_ok=False,
            keys_checked=0,
            keys_mismatched=0,
            plans_checked=0,
            plans_mismatched=0,
            healed=False,
        )
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["key_view"]["last_check_ok"] is False
