"""Every response names its request: the caller's own ``X-Request-Id`` when it is safe, else a new one."""

from __future__ import annotations

import re
import secrets

from reservekit.redaction import KEY_MARK

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_for(supplied: str | None) -> str:
    # A key pasted as a request id would be echoed into logs, bodies and events: replace it.
    if supplied and _SAFE_REQUEST_ID.match(supplied) and KEY_MARK not in supplied:
        return supplied
    return "req_" + secrets.token_hex(8)
