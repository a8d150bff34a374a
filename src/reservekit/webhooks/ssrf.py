"""Server-side request forgery guard: a webhook URL must resolve only to public addresses.

Checked when an endpoint is saved and again before every delivery (DNS can change in between: the
rebinding attack). The sender then connects to the very address that was checked, so a second lookup
inside the HTTP client cannot swap it (see ``sender.py``). Loopback is accepted only when the
development setting allows it; private, link-local, multicast and reserved addresses never are.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from reservekit.domain.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


class UnsafeDestination(Exception):
    """The URL's host resolves to an address webhooks may not reach."""


async def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _normalise(address: str) -> IPAddress:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_allowed(ip: IPAddress, *, allow_loopback: bool) -> bool:
    if ip.is_loopback:
        return allow_loopback
    return ip.is_global and not ip.is_multicast


async def resolve_safely(url: str, *, allow_loopback: bool, resolver: Resolver) -> list[IPAddress]:
    """Every address the host resolves to must be allowed (one bad answer refuses the whole host)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        answers = await resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise UnsafeDestination(f"cannot resolve {host}: {exc}") from None
    addresses = [_normalise(a) for a in answers]
    if not addresses:
        raise UnsafeDestination(f"{host} resolves to no address")
    for ip in addresses:
        if not is_allowed(ip, allow_loopback=allow_loopback):
            raise UnsafeDestination(f"{host} resolves to {ip}, a private, loopback or link-local address")
    return addresses


async def check_url_at_save(url: str, *, allow_loopback: bool, resolver: Resolver) -> None:
    try:
        await resolve_safely(url, allow_loopback=allow_loopback, resolver=resolver)
    except UnsafeDestination as exc:
        raise InvalidInput(f"url refused: {exc}", field="url") from None
