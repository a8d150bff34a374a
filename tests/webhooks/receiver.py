"""A real HTTP receiver on loopback, started by the test, that records every request it gets.

Minimal HTTP/1.1 on ``asyncio.start_server`` (one request per connection), so tests control each
answer: a status code, a hang (for timeouts and crashes), or a redirect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


Answer = Callable[[Received], "int | str"]  # a status, "hang", or "endless" (a 200 that never ends)


@dataclass
class Receiver:
    answer: Answer = field(default=lambda _r: 200)
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    extra_headers: dict[str, str] = field(default_factory=dict)
    _server: asyncio.AbstractServer | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait_for(self, count: int, within: float = 10.0) -> list[Received]:
        async with asyncio.timeout(within):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.requests

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            received = Received(path, headers, body)
            self.requests.append(received)
            self.arrived.set()
            answer = self.answer(received)
            if answer == "hang":
                await asyncio.sleep(3600)
                return
            if answer == "endless":  # a 200 whose body never ends: the sender must stop reading
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000\r\n\r\n")
                while True:
                    writer.write(b"x" * 65536)
                    await writer.drain()
                    await asyncio.sleep(0.01)
            extra = "".join(f"{k}: {v}\r\n" for k, v in self.extra_headers.items())
            writer.write(
                f"HTTP/1.1 {answer} X\r\ncontent-length: 2\r\nconnection: close\r\n{extra}\r\nok".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
