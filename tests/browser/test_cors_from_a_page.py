"""A domain-restricted key used from a real page in headless Chromium (issue 9, CORS).

A tiny static server on another loopback port serves the integrator's page. From an origin among the
key's domains the page's ``fetch()`` reads ``GET /v1/services``; from another origin the API answers 403
``origin_mismatch`` (the data route grants CORS to any origin and lets the key decide), and a management
route is blocked by the browser itself. The preflights the browser sends spend none of the caller's
failed-authentication budget.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from playwright.sync_api import Browser, Page
from structlog.testing import capture_logs

from reservekit.clock import FakeClock
from reservekit.settings import Settings
from tests.browser.conftest import LiveServer, serve
from tests.conftest import TEST_PEPPER

pytestmark = pytest.mark.browser

FAILED_AUTH_BUDGET = 2
Shoot = Callable[[Page, str], Path]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop front end</title></head>
<body>
<h1>Shop front end</h1>
<pre id="result">not called yet</pre>
<script>
async function callApi(url, secret) {
  const shown = document.getElementById("result");
  try {
    const response = await fetch(url, {headers: {"Authorization": "Bearer " + secret}});
    const body = await response.json();
    shown.textContent = location.origin + " -> " + response.status + "\\n" + JSON.stringify(body, null, 2);
    return {status: response.status, body: body};
  } catch (error) {
    shown.textContent = location.origin + " -> blocked: " + error;
    return {blocked: String(error)};
  }
}
</script>
</body></html>
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[int]:
    """The integrator's static site on its own loopback port (reachable as 127.0.0.1 and localhost)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "shop.html").write_text(PAGE, encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, name="static-pages", daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api(settings: Settings, clock: FakeClock) -> Iterator[LiveServer]:
    limited = msgspec.structs.replace(settings, failed_auth_per_ip_per_minute=FAILED_AUTH_BUDGET)
    yield from serve(limited, clock)


def cli(settings: Settings, *args: str) -> Any:
    env = {
        **os.environ,
        "RESERVEKIT_DATABASE_URL": settings.database_url,
        "RESERVEKIT_KEY_PEPPER": TEST_PEPPER,
        "RESERVEKIT_DATA_DIR": str(settings.data_dir),
    }
    done = subprocess.run(
        [sys.executable, "-m", "reservekit.cli.main", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_page_on_the_keys_domain_reads_services_and_another_origin_is_refused(
    browser: Browser, api: LiveServer, pages: int, settings: Settings, shoot: Shoot
) -> None:
    opened = cli(settings, "accounts", "create", "--name", "Shop")
    account = opened["account"]["id"]
    key = cli(
        settings,
        "keys", "create", "--account", account, "--name", "shop front end",
        "--domain", "127.0.0.1", "--scope", "services:read",
    )  # fmt: skip
    services = f"{api.url}/v1/services"
    made = httpx.post(
        services,
        json={"name": "Haircut", "duration_minutes": 30},
        headers={"Authorization": f"Bearer {opened['key']['secret']}"},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    allowed_origin, other_origin = f"http://127.0.0.1:{pages}", f"http://localhost:{pages}"

    with capture_logs() as logs:
        allowed = browser.new_page()
        allowed.goto(f"{allowed_origin}/shop.html")
        answered = allowed.evaluate("([url, secret]) => callApi(url, secret)", [services, key["secret"]])
        shoot(allowed, "cors-allowed-origin")
        # A management route is not open to this origin (RESERVEKIT_CORS_ALLOWED_ORIGINS is empty): the
        # preflight is answered without grants and Chromium never sends the request.
        management = allowed.evaluate(
            "([url, secret]) => callApi(url, secret)", [f"{api.url}/v1/api-keys", key["secret"]]
        )

        other = browser.new_page()
        other.goto(f"{other_origin}/shop.html")
        refused = other.evaluate("([url, secret]) => callApi(url, secret)", [services, key["secret"]])
        shoot(other, "cors-other-origin")

    assert answered["status"] == 200, answered
    assert [service["name"] for service in answered["body"]["data"]] == ["Haircut"]
    assert refused["status"] == 403, refused
    assert refused["body"]["code"] == "origin_mismatch"
    assert "blocked" in management, management

    # Chromium did preflight each call (Authorization makes the request non-simple), and those
    # preflights were answered before authentication.
    requests = [(e["method"], e["route"], e["status"]) for e in logs if e["event"] == "http_request"]
    assert requests.count(("OPTIONS", "/v1/services", 204)) == 2
    assert ("OPTIONS", "/v1/api-keys", 204) in requests
    assert ("GET", "/v1/api-keys", 200) not in requests
    assert ("GET", "/v1/services", 200) in requests
    assert ("GET", "/v1/services", 403) in requests

    # The whole failed-authentication budget of 127.0.0.1 is still there: the preflights spent nothing.
    wrong = {"Authorization": "Bearer sk_rsv_" + "x" * 38}
    statuses = [httpx.get(services, headers=wrong, timeout=10).status_code for _ in range(3)]
    assert statuses == [401] * FAILED_AUTH_BUDGET + [429]
