"""The dispatcher: turns outbox messages into deliveries and sends them, at least once, in order.

Runs in every replica; the database coordinates them.

1. **Materialise** (one transaction per outbox): lock the outbox's cursor row, read the messages after
   it, insert one delivery per subscribed endpoint (unique per endpoint and message), move the cursor.
   A crash loses both or neither, so each message is fanned out exactly once.
2. **Claim**: for each endpoint only its oldest pending delivery is a candidate (ordering by position),
   and it is claimed by a conditional UPDATE that sets a lease (``lease_until_us``) only if no live
   lease exists and ``attempts`` is what was read. Exactly one replica wins; the others move on.
3. **Send** with a timeout; record the attempt; on failure schedule the next one with exponential
   backoff and full jitter until ``give_up_after`` (3 days), then mark it ``failed``.

A replica that dies mid-delivery leaves a lease that simply expires; the delivery is then sent again
with the same ``webhook-id`` (the at-least-once duplicate receivers de-duplicate on). After
``failing_after_errors`` consecutive failures an endpoint shows as ``failing``; once it has failed for
``disable_after`` it is disabled by a ``webhook_endpoint_disabled`` event, which also raises a flag.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import structlog
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from projections import webhook_outbox
from projections._upsert import dialect_insert
from reservekit.background import WakeUp, stop_loop, wait_for_wakeup
from reservekit.clock import Clock, SystemClock, from_micros, to_micros
from reservekit.db import DatabaseUnavailable, read_transaction, write_transaction
from reservekit.ids import new_id
from reservekit.webhooks.endpoints import Webhooks, disable_for_failures
from reservekit.webhooks.fanout import Fanout
from reservekit.webhooks.secrets import load_secret
from reservekit.webhooks.sender import AttemptResult, send_once
from reservekit.webhooks.tables import (
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoint_health,
)

log = structlog.get_logger(__name__)
_US = 1_000_000
_SECRET_CACHE = 10_000
_random = secrets.SystemRandom()


@dataclass(frozen=True)
class DispatchConfig:
    timeout_seconds: float = 10.0
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 3600.0
    give_up_after_seconds: float = 3 * 86_400.0
    failing_after_errors: int = 5
    disable_after_seconds: float = 86_400.0
    batch_size: int = 50
    concurrency: int = 16
    lease_margin_seconds: float = 5.0

    @property
    def lease_seconds(self) -> float:
        """Longer than any attempt can take, so a live attempt's lease never lapses under it."""
        return self.timeout_seconds + self.lease_margin_seconds

    def backoff(self, attempts: int) -> float:
        """Exponential, capped, with full jitter (spreads a recovered endpoint's retry storm)."""
        ceiling = min(self.backoff_base_seconds * 2 ** max(attempts - 1, 0), self.backoff_max_seconds)
        return _random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Claimed:
    seq: int
    delivery_id: str
    endpoint_id: str
    account_id: str
    event_type: str
    payload: str
    attempt: int
    expires_at_us: int
    url: str
    secret_version: int


class DeliveryObserver(Protocol):
    """Hook for metrics (``Metrics.delivered``)."""

    def delivered(self, event_type: str, result: AttemptResult) -> None: ...


class _Unobserved:
    def delivered(self, event_type: str, result: AttemptResult) -> None:
        return None


class Dispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        webhooks: Webhooks,
        config: DispatchConfig,
        wakeup: WakeUp,
        *,
        poll_interval: float = 1.0,
        clock: Clock | None = None,
        observer: DeliveryObserver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._engine = engine
        self._webhooks = webhooks
        self.config = config
        self._wakeup = wakeup
        self._poll_interval = poll_interval
        self._clock = clock or SystemClock()
        self._observer: DeliveryObserver = observer or _Unobserved()
        self._transport = transport
        self._owner = new_id("dsp")
        self._fanout = Fanout(
            engine,
            self._clock,
            give_up_after_seconds=config.give_up_after_seconds,
            batch=config.batch_size * 4,
        )
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._waiter: asyncio.Event | None = None
        self._secrets: dict[tuple[str, int], str] = {}

    def nudge(self) -> None:
        """Run a pass soon: the outbox projections just moved (see ``ProjectionRunner.on_applied``)."""
        if self._waiter is not None:
            self._waiter.set()

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="reservekit-webhooks")

    async def stop(self) -> None:
        await stop_loop(self._task, self._stopping, self._wakeup.notify)
        self._task = None

    async def _run(self) -> None:
        waiter = self._waiter = self._wakeup.subscribe()
        backoff = self._poll_interval
        async with httpx.AsyncClient(transport=self._transport, follow_redirects=False) as client:
            try:
                fan_out = True
                while not self._stopping.is_set():
                    try:
                        if await self.run_once(client, fan_out=fan_out):
                            # A backlog drains at once (the next delivery of an endpoint is due now);
                            # fan-out again only when woken meanwhile, or at the end of the backlog.
                            fan_out = waiter.is_set()
                            waiter.clear()
                            continue
                        fan_out = True
                        backoff = self._poll_interval
                    except (DatabaseUnavailable, SQLAlchemyError, OSError) as exc:
                        log.warning("webhook_dispatch_failed", error=str(exc), retry_in=backoff)
                        backoff = min(backoff * 2, 30.0)
                    await wait_for_wakeup(waiter, backoff)
            finally:
                self._wakeup.unsubscribe(waiter)

    async def run_once(self, client: httpx.AsyncClient, *, fan_out: bool = True) -> int:
        """Materialise new messages, then claim and send what is due; returns attempts made."""
        if fan_out:
            await self.materialise_all()
        claimed = await self.claim_due()
        if not claimed:
            return 0
        limit = asyncio.Semaphore(self.config.concurrency)

        async def one(item: Claimed) -> None:
            async with limit:
                await self._deliver(client, item)

        await asyncio.gather(*(one(item) for item in claimed))
        return len(claimed)

    async def materialise_all(self) -> None:
        """Fan every new outbox message and usage flag out to its endpoints (exactly once)."""
        await self._fanout.run()

    async def claim_due(self) -> list[Claimed]:
        d = webhook_deliveries
        endpoints = webhook_outbox.LIVE.endpoints
        now_us = to_micros(self._clock.now())
        heads = (
            select(d.c.endpoint_id, func.min(d.c.seq).label("seq"))
            .where(d.c.status == "pending")
            .group_by(d.c.endpoint_id)
            .subquery()
        )
        free = or_(d.c.lease_until_us.is_(None), d.c.lease_until_us <= now_us)
        query = (
            select(d, endpoints.c.url, endpoints.c.secret_version)
            .join(heads, and_(heads.c.seq == d.c.seq))
            .join(endpoints, endpoints.c.endpoint_id == d.c.endpoint_id)
            .where(endpoints.c.enabled.is_(True), d.c.next_attempt_at_us <= now_us, free)
            .order_by(d.c.seq)
            .limit(self.config.batch_size)
        )
        async with read_transaction(self._engine) as conn:
            candidates = list(await conn.execute(query))
        if not candidates:
            return []
        lease_until = now_us + int(self.config.lease_seconds * _US)
        claimed: list[Claimed] = []
        async with write_transaction(self._engine) as conn:
            for row in candidates:
                result = await conn.execute(
                    update(d)
                    .where(d.c.seq == row.seq, d.c.status == "pending", d.c.attempts == row.attempts, free)
                    .values(lease_owner=self._owner, lease_until_us=lease_until, attempts=row.attempts + 1)
                )
                if result.rowcount == 1:
                    claimed.append(
                        Claimed(
                            seq=int(row.seq),
                            delivery_id=row.delivery_id,
                            endpoint_id=row.endpoint_id,
                            account_id=row.account_id,
                            event_type=row.event_type,
                            payload=row.payload,
                            attempt=int(row.attempts) + 1,
                            expires_at_us=int(row.expires_at_us),
                            url=row.url,
                            secret_version=int(row.secret_version),
                        )
                    )
        return claimed

    async def _deliver(self, client: httpx.AsyncClient, item: Claimed) -> None:
        started_us = to_micros(self._clock.now())
        secret = await self._secret(item.endpoint_id, item.secret_version)
        if secret is None:
            result = AttemptResult("refused", None, 0.0, "signing secret missing")
        else:
            result = await send_once(
                client,
                url=item.url,
                secret=secret,
                webhook_id=item.delivery_id,
                payload=item.payload,
                timeout_seconds=self.config.timeout_seconds,
                allow_loopback=self._webhooks.allow_loopback,
                resolver=self._webhooks.resolver,
            )
        self._observer.delivered(item.event_type, result)
        log.info(
            "webhook_attempt",
            delivery_id=item.delivery_id,
            endpoint_id=item.endpoint_id,
            attempt=item.attempt,
            outcome=result.outcome,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
        )
        failing_since_us = await self._record(item, result, started_us)
        if failing_since_us is not None:
            disabled = await disable_for_failures(
                self._webhooks,
                endpoint_id=item.endpoint_id,
                failing_since=from_micros(failing_since_us),
                reason=f"every delivery failed for {self.config.disable_after_seconds:g} seconds",
            )
            if disabled:
                log.warning("webhook_endpoint_disabled", endpoint_id=item.endpoint_id)

    async def _secret(self, endpoint_id: str, version: int) -> str | None:
        """A version's secret never changes, so it is read and decrypted once per replica (bounded)."""
        cached = self._secrets.get((endpoint_id, version))
        if cached is not None:
            return cached
        async with read_transaction(self._engine) as conn:
            secret = await load_secret(conn, self._webhooks.box, endpoint_id=endpoint_id, version=version)
        if secret is not None:
            if len(self._secrets) >= _SECRET_CACHE:
                self._secrets.pop(next(iter(self._secrets)))
            self._secrets[(endpoint_id, version)] = secret
        return secret

    async def _record(self, item: Claimed, result: AttemptResult, started_us: int) -> int | None:
        """Store the attempt and the next step; returns failing-since if the endpoint should be disabled."""
        d = webhook_deliveries
        health = webhook_endpoint_health
        now_us = to_micros(self._clock.now())
        mine = and_(d.c.seq == item.seq, d.c.lease_owner == self._owner, d.c.attempts == item.attempt)
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                insert(webhook_attempts).values(
                    delivery_id=item.delivery_id,
                    endpoint_id=item.endpoint_id,
                    attempt=item.attempt,
                    started_at_us=started_us,
                    latency_ms=result.latency_ms,
                    status_code=result.status_code,
                    outcome=result.outcome,
                    error=result.error,
                )
            )
            common = {"lease_owner": None, "lease_until_us": None, "last_status_code": result.status_code}
            if result.succeeded:
                await conn.execute(
                    update(d)
                    .where(mine)
                    .values(status="succeeded", finished_at_us=now_us, last_error=None, **common)
                )
                await _upsert_health(conn, item.endpoint_id, success_us=now_us)
                return None
            if now_us >= item.expires_at_us:
                values: dict[str, Any] = {"status": "failed", "finished_at_us": now_us}
            else:
                delay_us = int(self.config.backoff(item.attempt) * _US)
                values = {"next_attempt_at_us": now_us + delay_us}
            await conn.execute(update(d).where(mine).values(last_error=result.error, **values, **common))
            await _upsert_health(conn, item.endpoint_id, failure_us=now_us)
            row = (
                await conn.execute(
                    select(health.c.consecutive_failures, health.c.failing_since_us).where(
                        health.c.endpoint_id == item.endpoint_id
                    )
                )
            ).one()
        failing_long = row.failing_since_us is not None and (
            now_us - int(row.failing_since_us) >= int(self.config.disable_after_seconds * _US)
        )
        if failing_long and int(row.consecutive_failures) >= self.config.failing_after_errors:
            return int(row.failing_since_us)
        return None


async def _upsert_health(
    conn: AsyncConnection, endpoint_id: str, *, success_us: int | None = None, failure_us: int | None = None
) -> None:
    health = webhook_endpoint_health
    statement = dialect_insert(conn, health).values(
        endpoint_id=endpoint_id,
        consecutive_failures=0 if success_us is not None else 1,
        failing_since_us=failure_us,
        last_success_us=success_us,
        last_failure_us=failure_us,
    )
    if success_us is not None:
        changes: dict[str, Any] = {
            "consecutive_failures": 0,
            "failing_since_us": None,
            "last_success_us": success_us,
        }
    else:
        changes = {
            "consecutive_failures": health.c.consecutive_failures + 1,
            "failing_since_us": func.coalesce(health.c.failing_since_us, failure_us),
            "last_failure_us": failure_us,
        }
    await conn.execute(statement.on_conflict_do_update(index_elements=["endpoint_id"], set_=changes))
