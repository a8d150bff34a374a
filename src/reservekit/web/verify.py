"""``POST /v1/keys/verify`` (keys:verify): the thin HTTP side of ``reservekit.auth.verification``."""

from __future__ import annotations

import ipaddress

from litestar import post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from reservekit.auth.verification import VerifyAnswer, VerifyBody, verified_usage_row, verify_answer
from reservekit.domain.domains import origin_host
from reservekit.domain.errors import InvalidInput
from reservekit.domain.scopes import KEYS_VERIFY
from reservekit.web.access import requires
from reservekit.web.deps import ApiCall


@post(
    "/v1/keys/verify",
    opt=requires(KEYS_VERIFY),
    status_code=200,
    tags=["keys"],
    summary="Check a key another service was given: SPEC §4's outcome, in a 200 answer",
)
async def verify_key(call: NamedDependency[ApiCall], data: JSONBody[VerifyBody]) -> VerifyAnswer:
    """An operator's service key may verify any account's keys; any other only its own account's
    (another account's key is answered exactly like an unknown key)."""
    if data.client_ip is not None:
        try:
            client_ip = str(ipaddress.ip_address(data.client_ip))
        except ValueError:
            raise InvalidInput("client_ip must be an IPv4 or IPv6 address", field="client_ip") from None
    else:
        client_ip = call.client_ip
    runtime = call.runtime
    caller = call.caller
    host = origin_host(data.origin, data.referer)
    result = await runtime.authenticator.decide(
        token=data.key,
        origin_host=host,
        required_scopes=frozenset(data.required_scopes) if data.required_scopes else None,
        client_ip=client_ip,
        cost=data.cost,
        within_account=None if caller.operator else caller.account_id,
    )
    now = runtime.clock.timestamp()
    answer = verify_answer(result, now=now, position=runtime.key_view.position)
    runtime.usage.record(
        verified_usage_row(
            result,
            answer,
            now=now,
            request_id=call.request_id,
            client_ip=client_ip,
            origin_host=host,
            verifier_key_id=caller.key_id,
        )
    )
    return answer
