"""S2: a live secret pasted into any free-text field never reaches an event, a row or a log line.

The test pastes one key everywhere a client can put text, then reads every table of the database
(the append-only logs, projections, services) and the captured logs, and finds it nowhere.
"""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from structlog.testing import capture_logs

from reservekit.events.verify import verify_chain
from reservekit.keys.tokens import generate_secret
from reservekit.redaction import REDACTED_KEY, redact
from reservekit.runtime import Runtime
from tests.web.conftest import Caller, Client, create_key


async def everything_stored(runtime: Runtime) -> str:
    async with runtime.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        dumped = []
        for name in names:
            rows = (await conn.execute(text(f'SELECT * FROM "{name}"'))).all()  # noqa: S608
            dumped.append(f"{name}: {rows!r}")
    return "\n".join(dumped)


async def test_a_pasted_secret_is_stored_nowhere(client: Client, acme: Caller, runtime: Runtime) -> None:
    victim = await create_key(client, acme, name="victim")
    pasted = victim.secret
    truncated = pasted[:24]  # a partial paste is still most of the secret
    to_revoke = await create_key(client, acme, name="to revoke")
    leaked = await create_key(client, acme, name="leaked")
    headers = acme.headers | {
        "User-Agent": f"curl {pasted}",
        "X-Request-Id": pasted,
        "Origin": f"https://{truncated}.example.com",
    }
    with capture_logs() as logs:
        named = await client.post("/v1/api-keys", json={"name": f"copy of {pasted}"}, headers=headers)
        assert named.status_code == 201, named.text
        assert pasted not in named.headers["x-request-id"]
        service = await client.post(
            "/v1/services",
            json={"name": pasted, "duration_minutes": 30, "description": f"see {truncated}"},
            headers=headers,
        )
        assert service.status_code == 201, service.text
        patched = await client.patch(
            f"/v1/services/{service.json()['id']}", json={"description": f"now {pasted}"}, headers=headers
        )
        assert patched.status_code == 200, patched.text
        revoked = await client.post(
            f"/v1/api-keys/{to_revoke.key_id}/revoke", json={"reason": f"leaked as {pasted}"}, headers=headers
        )
        assert revoked.status_code == 200, revoked.text
        reported = await client.post(
            "/v1/leaks", json={"key": leaked.secret, "source": f"paste with {pasted} too"}, headers=headers
        )
        assert reported.status_code == 202
    await runtime.usage.flush()
    await runtime.refresh_projections()

    stored = await everything_stored(runtime)
    assert pasted not in stored
    assert truncated not in stored
    assert leaked.secret not in stored
    assert REDACTED_KEY in stored  # redacted, not dropped: the rest of the text is kept
    assert "copy of sk_rsv_[REDACTED]" in stored
    assert pasted not in repr(logs)
    assert (await verify_chain(runtime.engine)).ok  # the chain covers the redacted text

    listed = (await client.get(f"/v1/api-keys/{named.json()['id']}", headers=acme.headers)).json()
    assert listed["name"] == "copy of sk_rsv_[REDACTED]"
    assert listed["prefix"].startswith("sk_rsv_") and len(listed["prefix"]) == 11  # noqa: PT018


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sk_rsv_AbC1", "sk_rsv_AbC1"),  # a display prefix is not secret
        ("sk_rsv_AbC1234", "sk_rsv_AbC1234"),  # 7 characters: too short to matter
        ("sk_rsv_AbC12345", REDACTED_KEY),
        ("a sk_rsv_AbC12345 b sk_rsv_XyZ98765", f"a {REDACTED_KEY} b {REDACTED_KEY}"),
        ("no key here", "no key here"),
    ],
)
def test_the_redaction_rule(given: str, expected: str) -> None:
    assert redact(given) == expected


def test_a_generated_secret_is_always_redacted() -> None:
    for _ in range(200):
        secret = generate_secret()
        assert redact(f"x{secret}.") == f"x{REDACTED_KEY}."
