"""While the LISTEN link is down, every tailer wait is cut to the fast fallback poll."""

from __future__ import annotations

import asyncio
import time

from reservekit.background import WakeUp, wait_for_wakeup


async def waited(hub: WakeUp, within: float) -> float:
    waiter = hub.subscribe()
    started = time.perf_counter()
    await wait_for_wakeup(waiter, within)
    return time.perf_counter() - started


async def test_without_a_link_waits_are_the_poll_interval() -> None:
    hub = WakeUp(fallback_poll=0.01)
    assert hub.link_status().state == "none"
    assert await waited(hub, 0.2) >= 0.19


async def test_a_link_that_is_down_cuts_waits_to_the_fallback_poll() -> None:
    hub = WakeUp(fallback_poll=0.01)
    hub.expect_link()  # expected but not connected yet
    assert hub.link_status().state == "down"
    assert await waited(hub, 5.0) < 0.1
    hub.link_restored()
    assert hub.link_status().state == "up"
    assert await waited(hub, 0.2) >= 0.19
    hub.link_lost()
    status = hub.link_status()
    assert (status.state, status.poll_seconds) == ("down", 0.01)
    assert await waited(hub, 5.0) < 0.1


async def test_losing_the_link_wakes_a_waiter_in_a_long_wait() -> None:
    hub = WakeUp(fallback_poll=0.01)
    hub.expect_link()
    hub.link_restored()
    waiter = hub.subscribe()
    started = time.perf_counter()
    waiting = asyncio.create_task(wait_for_wakeup(waiter, 5.0))
    await asyncio.sleep(0.02)
    hub.link_lost()
    await waiting
    assert time.perf_counter() - started < 1.0


async def test_down_seconds_grow_while_down() -> None:
    hub = WakeUp()
    hub.expect_link()
    hub.link_restored()
    hub.link_lost()
    await asyncio.sleep(0.05)
    assert hub.link_status().down_seconds >= 0.04
    hub.link_restored()
    assert hub.link_status().down_seconds == 0.0
