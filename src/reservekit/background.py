"""Background loops: wake-ups for log tailers (an in-process signal, fed on PostgreSQL by LISTEN/NOTIFY),
the wait between passes, and a clean stop.

Every loop (the projection runner, the key-view tailer, the usage writer) uses these; they live here,
apart from any one of them, so ``usage`` and ``projecting`` need not import each other.

Wake-ups only shorten the wait; tailers always poll as well, so a lost notification or a dropped
listener connection delays a reader by at most one poll interval and never loses an event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy.engine import make_url

log = structlog.get_logger(__name__)


class WakeUp:
    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()

    def subscribe(self) -> asyncio.Event:
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        return waiter

    def unsubscribe(self, waiter: asyncio.Event) -> None:
        self._waiters.discard(waiter)

    def notify(self, *_: Any) -> None:
        for waiter in self._waiters:
            waiter.set()


async def wait_for_wakeup(waiter: asyncio.Event, within: float) -> None:
    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races the event.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            await waiter.wait()
    waiter.clear()


async def stop_loop(
    task: asyncio.Task[None] | None, stopping: asyncio.Event, wake: Callable[[], None]
) -> None:
    """Ask a background loop to finish its current pass and return; cancel only if it will not.

    Cancelling a loop in the middle of a query can leave SQLite's write lock on a half-closed
    connection, so the next writer (the usage writer's final flush) waits out the busy timeout.
    """
    if task is None:
        return
    stopping.set()
    wake()
    try:
        await asyncio.wait_for(asyncio.shield(task), 10)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class PostgresListener:
    """Holds one asyncpg connection LISTENing on the channel; reconnects with backoff when it drops."""

    def __init__(self, database_url: str, channel: str, wakeup: WakeUp) -> None:
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._channel = channel
        self._wakeup = wakeup
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reservekit-pg-listener")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        import asyncpg

        backoff = 0.1
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("listener_connect_failed", error=str(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            try:
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(self._channel, self._wakeup.notify)
                backoff = 0.1
                self.connected.set()
                # A reconnect may have missed notifications: wake tailers so they catch up.
                self._wakeup.notify()
                await lost.wait()
                log.warning("listener_connection_lost")
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
