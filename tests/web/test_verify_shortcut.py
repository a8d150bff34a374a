"""``POST /v1/keys/verify`` answered from the outermost layer (``web/verify_shortcut.py``) must be the
very answer the routed path gives, and must fail the way the routed path fails."""

from __future__ import annotations

import pytest

from reservekit.db import DatabaseUnavailable
from reservekit.runtime import Runtime
from reservekit.web import verify_shortcut
from tests.web.conftest import Caller, Client, create_key, problem

VERIFY = "/v1/keys/verify"


async def test_the_shortcut_and_the_routed_path_answer_alike(
    client: Client, acme: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = await create_key(client, acme, name="service", scopes=["keys:verify"])
    web = await create_key(client, acme, name="web", scopes=["services:read"])
    taken: list[bool] = []
    real = verify_shortcut._is_plain_verify

    def watched(scope: dict[str, object]) -> bool:
        taken.append(real(scope))  # type: ignore[arg-type]
        return taken[-1]

    monkeypatch.setattr(verify_shortcut, "_is_plain_verify", watched)
    answers = []
    # Without Origin the shortcut answers; with one the request takes the routed path (CORS first).
    for extra in ({}, {"Origin": "https://elsewhere.example"}):
        for body in ({"key": web.secret, "required_scopes": ["services:read"]}, {"key": "sk_rsv_nope"}):
            response = await client.post(VERIFY, json=body, headers=service.headers | extra)
            assert response.headers["x-request-id"]
            answers.append((response.status_code, _stable(response.json())))
        bad = await client.post(VERIFY, content=b"{", headers=service.headers | extra | _json())
        answers.append((bad.status_code, {"code": problem(bad)["code"]}))
        refused = await client.post(VERIFY, json={"key": web.secret}, headers=web.headers | extra)
        answers.append((refused.status_code, {"code": problem(refused)["code"]}))
    assert taken[:4] == [True] * 4
    assert taken[4:] == [False] * 4
    assert answers[:4] == answers[4:]
    assert [status for status, _ in answers[:4]] == [200, 200, 400, 403]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (DatabaseUnavailable("connection refused"), 503, "database_unavailable"),
        (ValueError("a bug"), 500, "internal_error"),
    ],
    ids=["database-away", "bug"],
)
async def test_a_failure_while_verifying_is_a_problem_naming_the_request(
    client: Client,
    acme: Caller,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
    code: str,
) -> None:
    """The database away is 503 with Retry-After, anything else a 500, as on the routed path."""
    service = await create_key(client, acme, name="service", scopes=["keys:verify"])
    real_decide = runtime.authenticator.decide

    async def failing(**kwargs: object) -> object:
        if kwargs.get("within_account") is not None:  # the verified key, not the service's own
            raise error
        return await real_decide(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runtime.authenticator, "decide", failing)
    response = await client.post(
        VERIFY, json={"key": "sk_rsv_x"}, headers=service.headers | {"X-Request-Id": "req_verify_fail"}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["x-request-id"] == "req_verify_fail"
    assert ("retry-after" in response.headers) == (status == 503)
    body = problem(response)
    assert (body["code"], body["request_id"]) == (code, "req_verify_fail")


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def _stable(answer: dict[str, object]) -> dict[str, object]:
    """Everything but the quota left and its reset, which the two calls spend one after the other."""
    quota = answer.get("ratelimit")
    if isinstance(quota, dict):
        answer["ratelimit"] = {k: v for k, v in quota.items() if k == "limit"}
    return answer
