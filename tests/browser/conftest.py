"""Browser fixtures: the app on a real loopback port (uvicorn in a thread) and Debian's Chromium.

Never a downloaded browser: Playwright drives /usr/bin/chromium (``apt-get install -y chromium``).
These tests carry the ``browser`` marker: the default ``pytest`` run deselects them and ``.ci/run``
runs them in their own bounded step, where a missing Chromium is an error, not a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from litestar import Litestar
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from reservekit.clock import FakeClock
from reservekit.settings import Settings
from reservekit.web.app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Set to a directory (e.g. docs/screenshots) to keep the screenshots the tests take.
SCREENSHOT_DIR_ENV = "RESERVEKIT_SCREENSHOT_DIR"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


@dataclass
class LiveServer:
    url: str
    app: Litestar
    clock: FakeClock


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(settings: Settings, clock: FakeClock) -> Iterator[LiveServer]:
    app = create_app(settings, clock=clock)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="dashboard-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app, clock)
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def live(settings: Settings, clock: FakeClock) -> Iterator[LiveServer]:
    yield from serve(settings, clock)


@pytest.fixture
def browser(settings: Settings) -> Iterator[Browser]:
    """Per test, and only after the test's database exists: Playwright's sync API runs an event loop in
    this thread, and the database fixtures' ``asyncio.run`` cannot run while it does."""
    del settings
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (never playwright install)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, live: LiveServer) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=live.url, viewport={"width": 1280, "height": 860})
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def shoot(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """``shoot(page, name)``: a full-page PNG; kept in $RESERVEKIT_SCREENSHOT_DIR when set (once, sqlite)."""
    taken: list[Path] = []

    def take(target: Page, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        target.screenshot(path=str(path), full_page=True)
        taken.append(path)
        return path

    yield take
    keep = os.environ.get(SCREENSHOT_DIR_ENV)
    if keep and "sqlite" in request.node.name:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for path in taken:
            shutil.copyfile(path, Path(keep) / path.name)
