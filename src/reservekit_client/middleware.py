"""An ASGI middleware that checks ``sk_rsv_`` keys for another service, mostly without asking.

A key it has not seen is sent to ``POST /v1/keys/verify``; the answer's facts (key id, account, scopes,
domains, expiry, revoked, plan limit) are remembered under a local HMAC of the key with a random salt
made at start-up, so neither the key nor the authority's hash is ever kept. The next request with that
key is judged locally by ``reservekit.auth.decision.judge_key``, the very function the authority runs,
and its quota is spent in the shared Redis limiter when one is given (else through a verify call).
The change feed marks a remembered key revoked (or rotated out) as soon as the authority reports it,
and drops it on any other change to the key or its account, so a revoked key is refused here within
milliseconds, without a call. While the feed is down nothing
remembered is trusted: every request is verified.

Rows 1-2 of SPEC §4 (no key, malformed key) are answered locally: they need no lookup, so they cost
the authority nothing (and do not count against its per-IP guessing budget).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any

import msgspec

from reservekit.auth.decision import bearer_token, judge_key
from reservekit.auth.outcomes import REFUSALS, Outcome
from reservekit.domain.domains import origin_host
from reservekit.keys.tokens import is_well_formed
from reservekit.ratelimit import RateLimiter, RateLimiterUnavailable
from reservekit_client._http import RetryPolicy
from reservekit_client.aio import AsyncReserveKitClient
from reservekit_client.errors import ReserveKitError
from reservekit_client.feed import ChangeFollower, FeedMode
from reservekit_client.models import KeyChange, Verification

log = logging.getLogger(__name__)
ASGIApp = Callable[..., Any]
ScopesFor = Callable[[dict[str, Any]], AbstractSet[str] | None]
WINDOW_SECONDS = 60
_CHALLENGE = b'Bearer realm="reservekit"'
_CHALLENGE_TOKEN = b'Bearer realm="reservekit", error="invalid_token"'
_PROBLEM_BASE = "https://docs.reservekit.io/problems/"
_REVOKING = frozenset({"key_revoked", "leak_reported"})


class VerifiedKey(msgspec.Struct, frozen=True):
    """What the app behind the middleware learns, in ``scope["state"]["reservekit_key"]``."""

    key_id: str
    account_id: str
    scopes: frozenset[str]


class KnownKey:
    """A remembered answer's facts: the shape ``judge_key`` reads, plus the plan limit."""

    __slots__ = ("account_id", "domains", "expires_at", "key_id", "limit", "revoked", "scopes")

    def __init__(self, answer: Verification) -> None:
        assert answer.key_id is not None
        assert answer.account_id is not None
        self.key_id = answer.key_id
        self.account_id = answer.account_id
        self.scopes = frozenset(answer.scopes)
        self.domains = tuple(answer.domains)
        self.expires_at = answer.expires_at.timestamp() if answer.expires_at else None
        self.revoked = answer.code == REFUSALS["revoked"].code
        self.limit = answer.ratelimit.limit if answer.ratelimit else None


class KeyCache:
    """Answers under ``HMAC(local salt, key)``; bounded LRU; kept current by the change feed."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._salt = secrets.token_bytes(32)
        self._capacity = capacity
        self._by_digest: OrderedDict[bytes, KnownKey] = OrderedDict()
        self._digest_by_key: dict[str, bytes] = {}
        # Position of the last change seen per key id / account id: an answer older than it is stale.
        self._changed_at: OrderedDict[str, int] = OrderedDict()

    def digest(self, token: str) -> bytes:
        return hmac.new(self._salt, token.encode(), hashlib.sha256).digest()

    def get(self, digest: bytes) -> KnownKey | None:
        known = self._by_digest.get(digest)
        if known is not None:
            self._by_digest.move_to_end(digest)
        return known

    def __len__(self) -> int:
        return len(self._by_digest)

    def remember(self, digest: bytes, answer: Verification) -> None:
        if answer.key_id is None or answer.account_id is None:
            return  # unknown keys are never remembered
        seen = max(self._changed_at.get(answer.key_id, 0), self._changed_at.get(answer.account_id, 0))
        if answer.position < seen:
            return  # answered by a replica that had not yet applied a change this feed already saw
        self._by_digest[digest] = KnownKey(answer)
        self._by_digest.move_to_end(digest)
        self._digest_by_key[answer.key_id] = digest
        while len(self._by_digest) > self._capacity:
            _, evicted = self._by_digest.popitem(last=False)
            self._digest_by_key.pop(evicted.key_id, None)

    def apply(self, change: KeyChange) -> None:
        """A change from the feed: a revocation or a rotation updates the remembered key in place (so
        it is refused with no call); any other change to a key, or to its account, forgets it."""
        subject = change.key_id or change.account_id
        self._changed_at[subject] = change.position
        self._changed_at.move_to_end(subject)
        while len(self._changed_at) > self._capacity:
            self._changed_at.popitem(last=False)
        if change.key_id is None:
            # A plan change: every remembered key of the account has a stale limit.
            for stale_digest, stale in list(self._by_digest.items()):
                if stale.account_id == change.account_id:
                    del self._by_digest[stale_digest]
                    self._digest_by_key.pop(stale.key_id, None)
            return
        digest = self._digest_by_key.get(change.key_id)
        known = self._by_digest.get(digest) if digest is not None else None
        if digest is None or known is None:
            return
        if change.type in _REVOKING:
            known.revoked = True
        elif change.type == "key_rotated" and change.grace_ends_at is not None:
            grace_end = change.grace_ends_at.timestamp()
            known.expires_at = grace_end if known.expires_at is None else min(known.expires_at, grace_end)
        else:
            del self._by_digest[digest]
            del self._digest_by_key[change.key_id]


class ReserveKitMiddleware:
    """Wrap any ASGI app: ``ReserveKitMiddleware(app, authority=AsyncReserveKitClient(url, service_key))``.

    ``required_scopes``: a set (any one grants access, as on the authority's own endpoints), or a
    function of the ASGI scope returning one (None: no scope needed). ``limiter``: the authority's
    shared ``RedisRateLimiter`` (same Redis, same prefix) to spend quota without a call.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        authority: AsyncReserveKitClient,
        required_scopes: AbstractSet[str] | ScopesFor | None = None,
        limiter: RateLimiter | None = None,
        feed: FeedMode = "sse",
        client_ip: Callable[[dict[str, Any]], str] | None = None,
        clock: Callable[[], float] = time.time,
        capacity: int = 100_000,
        verify_retry: RetryPolicy | None = None,
    ) -> None:
        self.app = app
        self.authority = authority
        self.cache = KeyCache(capacity)
        self.follower = ChangeFollower(authority, self.cache.apply, mode=feed)
        self._scopes_for: ScopesFor = (
            required_scopes if callable(required_scopes) else (lambda _scope: required_scopes)
        )
        self._limiter = limiter
        self._client_ip = client_ip or _peer
        self._clock = clock
        self._verify_retry = verify_retry or RetryPolicy(attempts=2, backoff=0.05, max_backoff=0.2)
        self.verify_calls = 0

    async def aclose(self) -> None:
        await self.follower.stop()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if scope["type"] == "websocket":
            # Not authenticated by this middleware yet: refuse rather than let it through unchecked.
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.follower.start()
        headers: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name in (b"authorization", b"origin", b"referer"):
                headers[name] = value.decode("latin-1")
        token = bearer_token(headers.get(b"authorization"))
        if token is None or not is_well_formed(token):
            outcome: Outcome = "missing" if token is None else "malformed"
            await _refuse(send, REFUSALS[outcome].status, outcome, token_given=bool(token))
            return
        required = self._scopes_for(scope)
        origin, referer = headers.get(b"origin"), headers.get(b"referer")
        digest = self.cache.digest(token)
        known = self.cache.get(digest) if self.follower.healthy else None
        if known is not None:
            now = self._clock()
            local = judge_key(
                known, now=now, origin_host=origin_host(origin, referer), required_scopes=required
            )
            if local != "ok":
                await _refuse(send, REFUSALS[local].status, local, token_given=True)
                return
            if self._limiter is not None and known.limit is not None:
                passed = await self._spend_locally(known, now, send)
                if passed is not None:
                    if passed:
                        await self._pass(known, scope, receive, send)
                    return
        await self._ask(token, digest, required, origin, referer, scope, receive, send)

    async def _spend_locally(self, known: KnownKey, now: float, send: Any) -> bool | None:
        """True: allowed; False: refused (answered); None: limiter down, ask the authority instead."""
        assert self._limiter is not None
        assert known.limit is not None
        try:
            decision = await self._limiter.hit(
                "acct:" + known.account_id, limit=known.limit, period=WINDOW_SECONDS, now=now
            )
        except RateLimiterUnavailable:
            return None
        if decision.allowed:
            return True
        retry_after = max(1, math.ceil(decision.retry_after))
        await _refuse(send, 429, "rate_limited", token_given=True, retry_after=retry_after)
        return False

    async def _ask(
        self,
        token: str,
        digest: bytes,
        required: AbstractSet[str] | None,
        origin: str | None,
        referer: str | None,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
    ) -> None:
        self.verify_calls += 1
        try:
            answer = await self.authority.verify_key(
                token,
                required_scopes=sorted(required) if required else None,
                origin=origin,
                referer=referer,
                client_ip=self._client_ip(scope),
                retry=self._verify_retry,
            )
        except ReserveKitError as exc:
            log.warning("reservekit verify failed: %s (code=%s request_id=%s)", exc, exc.code, exc.request_id)
            await _problem(send, 503, "Key authority unavailable", "authority_unavailable", [])
            return
        if self.follower.position is not None:
            # Changes after the follower's position will still arrive, so this answer can be corrected.
            self.cache.remember(digest, answer)
        if answer.valid and answer.key_id is not None:
            known = self.cache.get(digest) or KnownKey(answer)
            await self._pass(known, scope, receive, send)
            return
        await _answer_refusal(send, answer)

    async def _pass(self, known: KnownKey, scope: dict[str, Any], receive: Any, send: Any) -> None:
        state = scope.setdefault("state", {})
        state["reservekit_key"] = VerifiedKey(known.key_id, known.account_id, known.scopes)
        await self.app(scope, receive, send)

    def _lifespan_receive(self, receive: Any) -> Any:
        async def wrapped() -> Any:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.follower.start()
            elif message["type"] == "lifespan.shutdown":
                await self.follower.stop()
            return message

        return wrapped


def _peer(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "0.0.0.0"  # noqa: S104 - an address, not a bind


async def _answer_refusal(send: Any, answer: Verification) -> None:
    extra = [(b"retry-after", str(answer.retry_after).encode())] if answer.retry_after else []
    challenge = _CHALLENGE_TOKEN if answer.code != REFUSALS["missing"].code else _CHALLENGE
    if answer.status == 401:
        extra.append((b"www-authenticate", challenge))
    await _problem(send, answer.status, answer.title, answer.code, extra)


async def _refuse(
    send: Any, status: int, outcome: Outcome, *, token_given: bool, retry_after: int | None = None
) -> None:
    refusal = REFUSALS[outcome]
    extra: list[tuple[bytes, bytes]] = []
    if status == 401:
        extra.append((b"www-authenticate", _CHALLENGE_TOKEN if token_given else _CHALLENGE))
    if retry_after is not None:
        extra.append((b"retry-after", str(retry_after).encode()))
    await _problem(send, status, refusal.title, refusal.code, extra)


async def _problem(send: Any, status: int, title: str, code: str, extra: list[tuple[bytes, bytes]]) -> None:
    request_id = "req_" + secrets.token_hex(8)
    body = msgspec.json.encode(
        {
            "type": _PROBLEM_BASE + code,
            "title": title,
            "status": status,
            "code": code,
            "request_id": request_id,
        }
    )
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
