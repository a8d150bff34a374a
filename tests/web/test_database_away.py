"""F5: the database being away — refused, restarting, shutting down — is a 503 with Retry-After, never
a 500, whatever layer the error surfaces in."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, ProgrammingError

from reservekit import scheduling
from reservekit.db import is_unavailable
from reservekit.runtime import Runtime
from tests.broken_connections import assert_retried_on_another_connection, break_first_call
from tests.web.conftest import Caller, Client, problem


def wrapped(orig: BaseException) -> DBAPIError:
    """What SQLAlchemy's asyncpg dialect raises: the driver error twice wrapped."""
    try:
        try:
            raise orig
        except BaseException as inner:
            raise OperationalError("SELECT 1", None, inner) from inner
    except DBAPIError as outer:
        return outer


AWAY = [
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),
]


@pytest.mark.parametrize("orig", AWAY, ids=lambda e: type(e).__name__ + ":" + str(e)[:30])
def test_every_way_the_database_goes_away_is_recognised(orig: BaseException) -> None:
    assert is_unavailable(orig)
    assert is_unavailable(wrapped(orig))
    assert is_unavailable(InterfaceError("SELECT 1", None, orig))


@pytest.mark.parametrize(
    "error",
    [
        ProgrammingError("SELECT nope", None, Exception('relation "nope" does not exist')),
        asyncpg.exceptions.UniqueViolationError("duplicate key value"),
        ValueError("a bug"),
    ],
)
def test_statement_errors_are_not_mistaken_for_an_outage(error: BaseException) -> None:
    assert not is_unavailable(error)


@pytest.mark.parametrize("orig", AWAY[:5], ids=lambda e: type(e).__name__)
async def test_an_outage_surfacing_anywhere_answers_503_with_retry_after(
    client: Client, acme: Caller, monkeypatch: pytest.MonkeyPatch, orig: BaseException
) -> None:
    async def away(*_args: object, **_kwargs: object) -> object:
        raise wrapped(orig)

    monkeypatch.setattr(scheduling, "list_services", away)
    response = await client.get("/v1/services", headers=acme.headers)
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert problem(response)["code"] == "database_unavailable"


async def test_a_real_bug_is_still_a_500(
    client: Client, acme: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> object:
        raise wrapped(asyncpg.exceptions.UndefinedColumnError('column "x" does not exist'))

    monkeypatch.setattr(scheduling, "list_services", broken)
    response = await client.get("/v1/services", headers=acme.headers)
    assert response.status_code == 500


async def test_a_request_refused_because_the_database_is_away_still_gets_its_usage_row(
    client: Client, acme: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key not yet in memory needs the database; while it is away the answer is 503, with a row."""
    from reservekit.db import DatabaseUnavailable

    runtime: Runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]

    async def away(**_kwargs: object) -> object:
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(runtime.authenticator, "authenticate", away)
    response = await client.get("/v1/services", headers=acme.headers | {"X-Request-Id": "req-away-1"})
    assert response.status_code == 503
    assert "retry-after" in response.headers
    monkeypatch.undo()
    await runtime.usage.flush()
    from sqlalchemy import select

    from reservekit.usage.records import usage_log

    async with runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(usage_log.c.status, usage_log.c.outcome).where(usage_log.c.request_id == "req-away-1")
            )
        ).all()
    assert [tuple(r) for r in rows] == [(503, "unavailable")]


async def test_an_outage_while_authenticating_an_unseen_key_still_carries_the_request_id(
    client: Client, acme: Caller, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key not yet in memory is looked up in the database inside the auth middleware; the 503 is
    answered there, with the same X-Request-Id header every other answer carries (the OpenAPI
    document declares it on every response)."""

    async def away(*_args: object, **_kwargs: object) -> object:
        raise wrapped(ConnectionRefusedError(111, "Connect call failed"))

    monkeypatch.setattr(runtime.authenticator, "authenticate", away)
    response = await client.get("/v1/services", headers={**acme.headers, "X-Request-Id": "req_outage_1"})
    assert response.status_code == 503, response.text
    assert response.headers["x-request-id"] == "req_outage_1"
    assert int(response.headers["retry-after"]) >= 1
    body = problem(response)
    assert (body["code"], body["request_id"]) == ("database_unavailable", "req_outage_1")


def test_a_connection_left_mid_operation_by_a_restart_is_recognised() -> None:
    """asyncpg's words for a pooled connection the server cut while it was mid-statement."""
    broken = asyncpg.exceptions.InternalClientError(
        "cannot switch to state 12; another operation (2) is in progress"
    )
    assert is_unavailable(broken)


async def test_a_read_on_a_connection_a_restart_left_broken_is_retried_on_a_fresh_one(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restart fault test once got a 500: a pooled connection asyncpg had not yet noticed was dead.
    The read is repeated on a new connection; the caller sees rows, not an error."""
    from sqlalchemy import literal, select

    from reservekit.db import Read, create_engine, fetch_all

    engine = create_engine(postgres_url)
    calls = break_first_call(
        monkeypatch,
        "fetch",
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
    )
    try:
        rows = await fetch_all(engine, Read(select(literal(7).label("seven"))), {})
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [(7,)]
    assert_retried_on_another_connection(calls)


async def test_a_pooled_connection_the_server_dropped_is_replaced_at_checkout(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pre-ping is one simple-protocol statement (no BEGIN/ROLLBACK around a prepared one) and
    still finds a connection the server has dropped: the caller gets a fresh connection, not an error."""
    from sqlalchemy import text

    from reservekit.db import create_engine

    engine = create_engine(postgres_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            first_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        admin = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first_pid)
        finally:
            await admin.close()
        transactions: list[object] = []
        real_start = asyncpg.transaction.Transaction.start

        async def counted_start(self: asyncpg.transaction.Transaction) -> None:
            transactions.append(self)
            await real_start(self)

        monkeypatch.setattr(asyncpg.transaction.Transaction, "start", counted_start)
        async with engine.connect() as conn:
            assert not transactions, "the ping opened a transaction"
            second_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert second_pid != first_pid
    finally:
        await engine.dispose()
