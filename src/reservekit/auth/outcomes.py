"""The fixed outcomes of authenticating a request: SPEC §4's table, in the order the checks run."""

from __future__ import annotations

from typing import Literal, NamedTuple

Outcome = Literal[
    "ok",
    "missing",
    "malformed",
    "invalid",
    "revoked",
    "expired",
    "origin_mismatch",
    "scope_denied",
    "rate_limited",
]


class Refusal(NamedTuple):
    outcome: Outcome
    status: int
    title: str
    code: str


REFUSALS: dict[Outcome, Refusal] = {
    r.outcome: r
    for r in (
        Refusal("missing", 401, "Authorization header is missing", "authorization_missing"),
        Refusal("malformed", 401, "Authorization header is malformed", "authorization_malformed"),
        Refusal("invalid", 401, "API key is invalid", "api_key_invalid"),
        Refusal("revoked", 401, "API key revoked", "api_key_revoked"),
        Refusal("expired", 401, "API key expired", "api_key_expired"),
        Refusal("origin_mismatch", 403, "Origin does not match API key domain", "origin_mismatch"),
        Refusal("scope_denied", 403, "API key does not have access to this endpoint", "scope_denied"),
        Refusal("rate_limited", 429, "Rate limit exceeded", "rate_limited"),
    )
}

# Failures that say nothing about a real key: these count against the client IP's guessing budget.
GUESSING_OUTCOMES: frozenset[Outcome] = frozenset({"missing", "malformed", "invalid"})
