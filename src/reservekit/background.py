"""Background loops: wake-ups for log tailers (an in-process signal, fed on PostgreSQL by LISTEN/NOTIFY),
the wait between passes, and a clean stop.

Every loop (the projection runner, the key-view tailer, the usage writer) uses these; they live here,
apart from any one of them, so ``usage`` and ``projecting`` need not import each other.

Wake-ups only shorten the wait; tailers always poll as well, so a lost notification or a dropped
listener connection delays a reader by at most one poll interval and never loses an event. While the
LISTEN link is down (not yet connected, dropped, or its reconnection failing) every wait is cut to
``FALLBACK_POLL_SECONDS``, so a revocation on another replica still arrives within SPEC §9's 100 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
import structlog
from sqlalchemy.engine import make_url

log = structlog.get_logger(__name__)


FALLBACK_POLL_SECONDS = 0.05  # while LISTEN is down: keeps SPEC §9's 100 ms for revocations
LISTENER_PING_SECONDS = 1.0  # a silently dead LISTEN connection is noticed within about this


class LinkStatus(msgspec.Struct, frozen=True):
    """The wake-up link as /readyz and /metrics show it.

    ``state``: ``up``, ``down`` (tailers poll every ``poll_seconds`` instead of waiting for NOTIFY), or
    ``none`` (no LISTEN link on this backend: SQLite, one process). ``down_seconds``: how long it has
    been down, 0 when up.
    """

    state: str
    down_seconds: float
    poll_seconds: float | None


class WakeUp:
    def __init__(self, *, fallback_poll: float = FALLBACK_POLL_SECONDS) -> None:
        self._waiters: set[asyncio.Event] = set()
        self.fallback_poll = fallback_poll
        self._link_expected = False
        self._link_up = False
        self._down_since = time.monotonic()

    def subscribe(self) -> asyncio.Event:
        waiter = Waiter(self)
        self._waiters.add(waiter)
        return waiter

    def unsubscribe(self, waiter: asyncio.Event) -> None:
        self._waiters.discard(waiter)

    def notify(self, *_: Any) -> None:
        for waiter in self._waiters:
            waiter.set()

    # The link, reported by the PostgresListener.
    def expect_link(self) -> None:
        self._link_expected = True

    def link_restored(self) -> None:
        self._link_up = True

    def link_lost(self) -> None:
        if self._link_up or not self._link_expected:
            self._down_since = time.monotonic()
        self._link_expected = True
        self._link_up = False
        self.notify()  # waiters in a long poll wait come back and wait the short one instead

    @property
    def link_down(self) -> bool:
        return self._link_expected and not self._link_up

    def poll_within(self, within: float) -> float:
        return min(within, self.fallback_poll) if self.link_down else within

    def link_status(self) -> LinkStatus:
        if not self._link_expected:
            return LinkStatus("none", 0.0, None)
        if self._link_up:
            return LinkStatus("up", 0.0, None)
        return LinkStatus("down", round(time.monotonic() - self._down_since, 3), self.fallback_poll)


class Waiter(asyncio.Event):
    """An event that knows its hub, so a wait can shorten itself while the link is down."""

    def __init__(self, hub: WakeUp) -> None:
        super().__init__()
        self.hub = hub


async def wait_for_wakeup(waiter: asyncio.Event, within: float) -> None:
    # While the LISTEN link is down nothing will wake a tailer but its own poll: poll fast.
    if isinstance(waiter, Waiter):
        within = waiter.hub.poll_within(within)
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
        self.server_pid: int | None = None  # of the LISTEN backend, for operators and tests
        wakeup.expect_link()  # down until the first connection is up: tailers poll fast meanwhile

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
                conn = await asyncpg.connect(
                    self._dsn, timeout=2, server_settings={"application_name": "reservekit-listener"}
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("listener_connect_failed", error=str(exc), retry_in=backoff)
                self._wakeup.link_lost()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            try:
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(self._channel, self._wakeup.notify)
                backoff = 0.1
                self.server_pid = conn.get_server_pid()
                self.connected.set()
                self._wakeup.link_restored()
                # A reconnect may have missed notifications: wake tailers so they catch up.
                self._wakeup.notify()
                await self._watch(conn, lost)
                log.warning("listener_connection_lost")
            finally:
                self.connected.clear()
                self._wakeup.link_lost()
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)

    @staticmethod
    async def _watch(conn: Any, lost: asyncio.Event) -> None:
        """Return when the connection ends, or stops answering a ping (a silently dropped link)."""
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LISTENER_PING_SECONDS):
                    await lost.wait()
            if lost.is_set():
                return
            try:
                async with asyncio.timeout(LISTENER_PING_SECONDS):
                    await conn.fetchval("SELECT 1")
            except Exception:  # any failure of the ping means the link cannot be trusted
                return


class PeriodicTask:
    """A background loop: ``run_once`` at start, then every ``interval`` seconds until ``stop``.

    A pass that raises one of ``retried`` is logged as ``<name>_failed`` and tried again at the next
    interval; anything else is a bug and ends the loop loudly.
    """

    name = "periodic_task"
    retried: tuple[type[BaseException], ...] = (OSError,)

    def __init__(self, *, interval: float) -> None:
        self._interval = interval
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> object:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reservekit-" + self.name.replace("_", "-"))

    async def stop(self) -> None:
        await stop_loop(self._task, self._stopping, self._wake.set)
        self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except self.retried as exc:
                log.warning(f"{self.name}_failed", error=str(exc))
            await wait_for_wakeup(self._wake, self._interval)
