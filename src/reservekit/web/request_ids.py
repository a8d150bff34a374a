"""Every response names its request: the caller's own ``X-Request-Id`` when it is safe, else a new one."""

from __future__ import annotations

import re
import secrets

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_for(supplied: str | None) -> str:
    return supplied if supplied and _SAFE_REQUEST_ID.match(supplied) else "req_" + secrets.token_hex(8)
