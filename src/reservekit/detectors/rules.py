"""The catalogue of detection rules: name, severity, what each watches, and which settings tune it.

``Hit`` is what a rule reports for one usage row; the flag book (``flags.py``) folds hits into flags.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import msgspec

from reservekit.clock import from_micros

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")

REVOKED_KEY_USED = "revoked_key_used"
EXPIRED_KEY_USED = "expired_key_used"
ORIGIN_MISMATCH_REPEATED = "origin_mismatch_repeated"
FAILED_AUTH_BURST = "failed_auth_burst"
KEY_MANY_IPS = "key_many_ips"
NEW_IP_FIRST_USE = "new_ip_first_use"
RATE_SPIKE = "rate_spike"
SCOPE_PROBING = "scope_probing"
DORMANT_KEY_WOKE = "dormant_key_woke"
LEAKED_KEY_REPORTED = "leaked_key_reported"
WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint_disabled"


class Rule(NamedTuple):
    name: str
    severity: Severity
    watches: str
    settings: tuple[str, ...] = ()


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule(REVOKED_KEY_USED, "high", "any request made with a revoked key"),
        Rule(EXPIRED_KEY_USED, "medium", "any request made with an expired or rotated-out key"),
        Rule(
            ORIGIN_MISMATCH_REPEATED,
            "medium",
            "origin-mismatch refusals for one key within a sliding window",
            ("origin_mismatch_count", "origin_mismatch_window_seconds"),
        ),
        Rule(
            FAILED_AUTH_BURST,
            "high",
            "missing, malformed or unknown keys (and IP-guard refusals) from one client IP in a window",
            ("failed_auth_count", "failed_auth_window_seconds"),
        ),
        Rule(
            KEY_MANY_IPS,
            "high",
            "distinct client IPs using one key within a sliding window",
            ("many_ips_count", "many_ips_window_seconds"),
        ),
        Rule(
            NEW_IP_FIRST_USE,
            "low",
            "a key used from an IP it has never used, once past its learning period",
            ("new_ip_min_prior_uses",),
        ),
        Rule(
            RATE_SPIKE,
            "medium",
            "a minute's request count against the key's EWMA of previous per-minute counts",
            (
                "rate_spike_factor",
                "rate_spike_min_requests",
                "rate_spike_alpha",
                "rate_spike_min_history_minutes",
            ),
        ),
        Rule(
            SCOPE_PROBING,
            "medium",
            "scope-denied refusals for one key within a sliding window (probing for endpoints)",
            ("scope_denial_count", "scope_denial_window_seconds"),
        ),
        Rule(
            DORMANT_KEY_WOKE,
            "medium",
            "a use after a long gap since the key's previous use",
            ("dormant_after_days",),
        ),
        Rule(LEAKED_KEY_REPORTED, "critical", "a leak report (POST /v1/leaks) naming an existing key"),
        Rule(
            WEBHOOK_ENDPOINT_DISABLED,
            "high",
            "a webhook endpoint disabled after its deliveries failed for a day (docs/webhooks.md)",
        ),
    )
}


def iso(micros: int) -> str:
    """Event times in evidence, as RFC 3339 text."""
    return from_micros(micros).isoformat()


def key_subject(key_id: str) -> str:
    return "key:" + key_id


def ip_subject(client_ip: str) -> str:
    return "ip:" + client_ip


class Hit(msgspec.Struct, frozen=True, kw_only=True):
    """One usage row matching one rule, with the rule's evidence as of that row."""

    rule: str
    subject: str
    at_us: int
    account_id: str | None
    key_id: str | None
    client_ip: str
    origin: str | None
    evidence: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def severity(self) -> Severity:
        return RULES[self.rule].severity
