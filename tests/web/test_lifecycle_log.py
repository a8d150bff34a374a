"""Each lifecycle change is one log line with ids and position, never a secret, hash or free text."""

from __future__ import annotations

from structlog.testing import capture_logs

from reservekit import __version__
from reservekit.settings import Settings
from reservekit.web.app import create_app
from tests.web.conftest import Caller, Client, serving


async def test_created_and_revoked_keys_are_logged_once_each_without_secrets(
    client: Client, acme: Caller
) -> None:
    with capture_logs() as logs:
        created = await client.post("/v1/api-keys", json={"name": "ci"}, headers=acme.headers)
        key = created.json()
        await client.post(
            f"/v1/api-keys/{key['id']}/revoke", json={"reason": "leaked in a ticket"}, headers=acme.headers
        )
    lines = [entry for entry in logs if entry.get("log_level") == "info" and "position" in entry]
    assert [(e["event"], e["stream_id"]) for e in lines] == [
        ("key_created", key["id"]),
        ("key_revoked", key["id"]),
    ]
    assert lines[0]["account_id"] == acme.account_id
    assert lines[0]["actor_key_id"] == acme.key_id
    assert lines[0]["source"] == "api"
    assert lines[1]["position"] == lines[0]["position"] + 1
    text = repr(logs)
    assert key["secret"] not in text
    assert "sk_rsv_" not in text
    assert "leaked in a ticket" not in text
    assert "key_hash" not in text


async def test_the_server_logs_its_start_and_its_clean_stop(settings: Settings) -> None:
    app = create_app(settings)
    with capture_logs() as logs:
        async with serving(app) as client:
            assert (await client.get("/healthz")).status_code == 200
    events = [entry["event"] for entry in logs if entry["event"].startswith("server_")]
    assert events == ["server_started", "server_stopping", "server_stopped"]
    started = next(entry for entry in logs if entry["event"] == "server_started")
    assert started["version"] == __version__
    assert started["database"] == ("sqlite" if settings.is_embedded else "postgresql")
    assert isinstance(started["log_position"], int)
