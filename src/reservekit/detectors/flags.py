"""Folding hits into flags: one open flag per (rule, subject) absorbs hits until a quiet episode gap.

A flag's id is derived from (rule, subject, first_seen_us), all of which come from the log, so a
rebuild reproduces every id exactly. Evidence merges: lists are unioned (sorted, at most
``MAX_EVIDENCE_ITEMS``), every other value takes the latest hit's.
"""

from __future__ import annotations

import hashlib
from typing import Any

from reservekit.detectors.rules import RULES, Hit
from reservekit.detectors.state import DetectorState, OpenFlag

MAX_EVIDENCE_ITEMS = 20


def flag_id_for(rule: str, subject: str, first_seen_us: int) -> str:
    digest = hashlib.sha256(f"{rule}|{subject}|{first_seen_us}".encode()).hexdigest()
    return "flg_" + digest[:24]


def hit_evidence(hit: Hit) -> dict[str, Any]:
    """The rule's evidence plus the row's client IP and origin (every flag lists both)."""
    evidence = dict(hit.evidence)
    evidence["ips"] = [*evidence.get("ips", []), hit.client_ip]
    evidence["origins"] = [*evidence.get("origins", []), *([hit.origin] if hit.origin else [])]
    return evidence


def merge_evidence(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    for name, value in new.items():
        if isinstance(value, list):
            previous = old.get(name, [])
            merged[name] = sorted({*previous, *value})[:MAX_EVIDENCE_ITEMS]
        else:
            merged[name] = value
    return merged


def absorb(state: DetectorState, hit: Hit, *, episode_gap_us: int) -> OpenFlag:
    """Update the open flag of the hit's (rule, subject), or open a new one."""
    head = state.heads.get((hit.rule, hit.subject))
    if head is not None and hit.at_us - head.last_seen_us <= episode_gap_us:
        head.hits += 1
        head.last_seen_us = max(head.last_seen_us, hit.at_us)
        head.evidence = merge_evidence(head.evidence, hit_evidence(hit))
        if head.account_id is None:
            head.account_id = hit.account_id
        state.save_flag(head)
        return head
    flag = OpenFlag(
        flag_id=flag_id_for(hit.rule, hit.subject, hit.at_us),
        rule=hit.rule,
        severity=RULES[hit.rule].severity,
        account_id=hit.account_id,
        key_id=hit.key_id,
        client_ip=hit.client_ip,
        subject=hit.subject,
        first_seen_us=hit.at_us,
        last_seen_us=hit.at_us,
        hits=1,
        evidence=merge_evidence({}, hit_evidence(hit)),
    )
    state.save_flag(flag)
    return flag
