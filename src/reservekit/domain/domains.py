"""Domain restrictions: validating entries at creation and matching a request's origin host."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from reservekit.domain.errors import InvalidInput

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MAX_DOMAINS = 50


def normalise_domain(raw: str) -> str:
    """Lower-case, no trailing dot, valid labels; ``*.`` only as a whole leftmost label."""
    value = raw.strip().lower().rstrip(".")
    if "://" in value or "/" in value or ":" in value:
        raise InvalidInput(
            f"domain {raw!r} must be a host name, without scheme, port or path", field="domains"
        )
    labels = value.split(".")
    wildcard = labels[0] == "*"
    checked = labels[1:] if wildcard else labels
    if (
        len(value) > 253
        or len(checked) < (2 if wildcard else 1)
        or not all(_LABEL.match(lb) for lb in checked)
    ):
        raise InvalidInput(f"domain {raw!r} is not a valid host name or *.wildcard", field="domains")
    return value


def normalise_domains(raw: Iterable[str] | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    values = list(raw)
    if len(values) > MAX_DOMAINS:
        raise InvalidInput(f"at most {MAX_DOMAINS} domains per key", field="domains")
    return tuple(sorted({normalise_domain(v) for v in values}))


def origin_host(origin: str | None, referer: str | None) -> str | None:
    """The host of ``Origin`` (or, if absent, ``Referer``); None when neither names a host."""
    source = origin if origin is not None else referer
    if not source or source.strip().lower() == "null":
        return None
    try:
        host = urlsplit(source.strip()).hostname
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


def host_matches(host: str | None, domains: Iterable[str]) -> bool:
    if host is None:
        return False
    for domain in domains:
        if domain.startswith("*."):
            if host.endswith(domain[1:]) and len(host) > len(domain) - 1:
                return True
        elif host == domain:
            return True
    return False
