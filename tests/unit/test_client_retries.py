"""Client retries, idempotency keys, typed errors and sync/async parity, against a mock transport."""

from __future__ import annotations

import inspect

import httpx
import pytest

from reservekit_client import (
    AsyncReserveKitClient,
    RateLimited,
    ReserveKitClient,
    RetryPolicy,
    ServerError,
    ServiceUnavailable,
)

SERVICE = {
    "id": "svc_1",
    "name": "Cut",
    "duration_minutes": 30,
    "description": None,
    "created_at": "2026-06-01T12:00:00Z",
    "updated_at": "2026-06-01T12:00:00Z",
}
FAST = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.01)


def scripted(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), seen


def problem(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"type": "t", "title": "T", "status": status, "code": code, "request_id": "req_abc"}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json", **headers})


def test_a_post_is_retried_with_one_idempotency_key() -> None:
    transport, seen = scripted(
        httpx.ConnectError("refused"), problem(503, "database_unavailable"), httpx.Response(201, json=SERVICE)
    )
    with ReserveKitClient("http://a", "sk", transport=transport, retry=FAST) as client:
        assert client.create_service("Cut", 30).id == "svc_1"
    keys = {r.headers["idempotency-key"] for r in seen}
    assert len(seen) == 3
    assert len(keys) == 1
    assert all(r.headers["authorization"] == "Bearer sk" for r in seen)


def test_each_call_gets_its_own_key_and_a_given_key_is_sent() -> None:
    transport, seen = scripted(*(httpx.Response(201, json=SERVICE) for _ in range(3)))
    with ReserveKitClient("http://a", "sk", transport=transport) as client:
        client.create_service("Cut", 30)
        client.create_service("Cut", 30)
        client.create_service("Cut", 30, idempotency_key="mine")
    assert len({r.headers["idempotency-key"] for r in seen}) == 3
    assert seen[2].headers["idempotency-key"] == "mine"


def test_gets_carry_no_idempotency_key_and_give_up_after_the_attempts() -> None:
    transport, seen = scripted(*(problem(503, "database_unavailable") for _ in range(3)))
    with (
        pytest.raises(ServiceUnavailable) as failed,
        ReserveKitClient("http://a", "sk", transport=transport, retry=FAST) as client,
    ):
        client.get_service("svc_1")
    assert (failed.value.status, failed.value.code, failed.value.request_id) == (
        503,
        "database_unavailable",
        "req_abc",
    )
    assert len(seen) == 3
    assert "idempotency-key" not in seen[0].headers


def test_a_429_waits_for_retry_after_unless_it_is_too_long() -> None:
    transport, seen = scripted(
        problem(429, "rate_limited", **{"retry-after": "0"}), httpx.Response(200, json=SERVICE)
    )
    with ReserveKitClient("http://a", "sk", transport=transport, retry=FAST) as client:
        assert client.get_service("svc_1").name == "Cut"
    transport, seen = scripted(problem(429, "rate_limited", **{"retry-after": "30"}))
    with (
        pytest.raises(RateLimited) as limited,
        ReserveKitClient("http://a", "sk", transport=transport, retry=FAST) as client,
    ):
        client.get_service("svc_1")
    assert (len(seen), limited.value.retry_after) == (1, 30.0)


def test_client_errors_are_not_retried() -> None:
    transport, seen = scripted(problem(409, "conflict"))
    with (
        pytest.raises(Exception, match="409") as conflict,
        ReserveKitClient("http://a", "sk", transport=transport, retry=FAST) as client,
    ):
        client.rotate_key("key_1")
    assert type(conflict.value).__name__ == "Conflict"
    assert len(seen) == 1


async def test_the_async_client_retries_the_same_way() -> None:
    seen: list[httpx.Request] = []
    answers = [httpx.ConnectError("refused"), httpx.Response(201, json=SERVICE)]

    async def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async with AsyncReserveKitClient(
        "http://a", "sk", transport=httpx.MockTransport(handle), retry=FAST
    ) as c:
        assert (await c.create_service("Cut", 30)).id == "svc_1"
    assert len({r.headers["idempotency-key"] for r in seen}) == 1
    assert len(seen) == 2


def test_unreachable_is_a_service_unavailable_error() -> None:
    transport, _ = scripted(*(httpx.ConnectError("refused") for _ in range(3)))
    with (
        pytest.raises(ServiceUnavailable) as failed,
        ReserveKitClient("http://a", "sk", transport=transport, retry=FAST) as client,
    ):
        client.verify_chain()
    assert (failed.value.status, failed.value.code) == (None, "unreachable")


def test_sync_and_async_clients_offer_the_same_operations() -> None:
    def operations(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(member).parameters)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    sync, async_ = operations(ReserveKitClient), operations(AsyncReserveKitClient)
    sync["aclose"] = sync.pop("close")
    assert sync == async_
    for name in async_:
        member = getattr(AsyncReserveKitClient, name)
        if name.startswith(("iter_", "stream_")):
            assert inspect.isasyncgenfunction(member), name
        else:
            assert inspect.iscoroutinefunction(member), name


def test_a_write_that_may_have_been_applied_is_retried_only_when_the_server_dedupes() -> None:
    for answer in (httpx.ReadTimeout("slow"), problem(502, "bad_gateway")):
        transport, seen = scripted(answer, httpx.Response(201, json=SERVICE))
        careful = RetryPolicy(attempts=3, backoff=0.001, retry_ambiguous_writes=False)
        with (
            pytest.raises((ServiceUnavailable, ServerError)),
            ReserveKitClient("http://a", "sk", transport=transport, retry=careful) as c,
        ):
            c.create_service("Cut", 30)
        assert len(seen) == 1
        transport, seen = scripted(answer, httpx.Response(201, json=SERVICE))
        brave = RetryPolicy(attempts=3, backoff=0.001)  # the default: the authority honours the key
        with ReserveKitClient("http://a", "sk", transport=transport, retry=brave) as c:
            assert c.create_service("Cut", 30).id == "svc_1"
        assert len(seen) == 2
        # Reads are always safe to repeat.
        transport, seen = scripted(answer, httpx.Response(200, json=SERVICE))
        with ReserveKitClient("http://a", "sk", transport=transport, retry=FAST) as c:
            assert c.get_service("svc_1").id == "svc_1"


def test_verify_is_a_question_and_carries_no_idempotency_key() -> None:
    answer = {
        "valid": True, "code": "valid", "title": "API key is valid", "status": 200, "key_id": "key_1",
        "account_id": "acct_1", "scopes": [], "domains": [], "expires_at": None, "ratelimit": None,
        "retry_after": None, "position": 1,
    }  # fmt: skip
    transport, seen = scripted(httpx.ReadTimeout("slow"), httpx.Response(200, json=answer))
    with ReserveKitClient("http://a", "sk", transport=transport, retry=FAST) as client:
        assert client.verify_key("sk_rsv_x").valid
    assert len(seen) == 2
    assert all("idempotency-key" not in r.headers for r in seen)
