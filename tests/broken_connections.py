"""Make one asyncpg ``Connection`` method fail on its first call, as a connection a restart cut would.

Returns the calls made, as (connection, server pid): the objects themselves, not ``id()``, because a
closed connection's memory may be reused for the next one and two connections can then share an id.
"""

from __future__ import annotations

import asyncpg
import pytest

Calls = list[tuple[asyncpg.Connection, int]]


def break_first_call(monkeypatch: pytest.MonkeyPatch, method: str, error: BaseException) -> Calls:
    calls: Calls = []
    real = getattr(asyncpg.Connection, method)

    async def once_broken(self: asyncpg.Connection, *args: object, **kwargs: object) -> object:
        calls.append((self, self.get_server_pid()))
        if len(calls) == 1:
            raise error
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, method, once_broken)
    return calls


def assert_retried_on_another_connection(calls: Calls) -> None:
    assert len(calls) == 2
    (first, first_pid), (second, second_pid) = calls
    assert first is not second, "the broken connection went back to the pool and was used again"
    assert first_pid != second_pid
