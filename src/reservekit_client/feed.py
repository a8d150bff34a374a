"""Following the authority's change feed from another service, across disconnects.

The follower remembers the last position it has seen and resumes after it, so a disconnect delays
changes but never loses one. While it is not connected and positioned (``healthy`` false), its owner
must not trust what it remembers: the middleware then asks the authority on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Literal

from reservekit_client._http import Position
from reservekit_client.aio import AsyncReserveKitClient
from reservekit_client.errors import ReserveKitError
from reservekit_client.models import KeyChange

log = logging.getLogger(__name__)
FeedMode = Literal["sse", "poll"]


class ChangeFollower:
    """A background task applying every key/plan change, in log order, through ``on_change``."""

    def __init__(
        self,
        client: AsyncReserveKitClient,
        on_change: Callable[[KeyChange], None],
        *,
        mode: FeedMode = "sse",
        poll_wait: float = 25.0,
        min_backoff: float = 0.05,
        max_backoff: float = 2.0,
    ) -> None:
        self._client = client
        self._on_change = on_change
        self._mode = mode
        self._poll_wait = poll_wait
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self.position: int | None = None
        self.healthy = False
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None
        self._positioned = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="reservekit-feed")

    async def wait_healthy(self, within: float) -> bool:
        """For start-up and tests: True once connected and positioned, within ``within`` seconds."""
        self.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while not self.healthy:
                    self._positioned.clear()
                    await self._positioned.wait()
        return self.healthy

    async def stop(self) -> None:
        task, self._task = self._task, None
        self.healthy = False
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        delay = self._min_backoff
        while True:
            try:
                if self._mode == "sse" and await self._follow_stream():
                    # The server ends streams after a while: resume at once, still trusted (anything
                    # committed meanwhile arrives on the next stream, from the position we hold).
                    delay = self._min_backoff
                    continue
                if self._mode == "poll":
                    await self._follow_polls()
            except ReserveKitError as exc:
                log.warning("reservekit change feed unavailable: %s", exc)
            except Exception:  # a background task must outlive any one bad answer
                log.exception("reservekit change feed failed")
            was_healthy, self.healthy = self.healthy, False
            self.reconnects += 1
            # Back off only while the authority keeps failing; a stream that ran reconnects at once.
            delay = self._min_backoff if was_healthy else min(self._max_backoff, delay * 2)
            await asyncio.sleep(delay)

    async def _follow_stream(self) -> bool:
        """True when the stream caught up and then ended normally; False when it ended before that."""
        caught_up = False
        async for item in self._client.stream_changes(after=self.position):
            if isinstance(item, KeyChange):
                self._on_change(item)
            self.position = item.position
            # A position event means caught up: only then is what we remember current again.
            if isinstance(item, Position):
                caught_up = True
                if not self.healthy:
                    self._mark_healthy()
        return caught_up

    async def _follow_polls(self) -> None:
        while True:
            # Until caught up (an empty page), ask again at once; then long-poll.
            wait = self._poll_wait if self.healthy else 0.0
            page = await self._client.poll_changes(after=self.position, wait=wait)
            for change in page.changes:
                self._on_change(change)
            self.position = page.next
            if not page.changes and not self.healthy:
                self._mark_healthy()

    def _mark_healthy(self) -> None:
        self.healthy = True
        self._positioned.set()
