"""Suspicious-usage detection: pure rules over usage rows, configured by ``DetectorThresholds``.

Nothing here does I/O or reads a clock; the ``usage_flags`` projection feeds rows in log order and
persists the state, so a rebuild from the log reproduces the live flags exactly (SPEC §8).
"""

from reservekit.detectors.config import DEFAULT_THRESHOLDS, DetectorThresholds
from reservekit.detectors.engine import Detectors
from reservekit.detectors.rules import RULES, SEVERITIES, Hit, Rule
from reservekit.detectors.state import DetectorState

__all__ = [
    "DEFAULT_THRESHOLDS",
    "RULES",
    "SEVERITIES",
    "DetectorState",
    "DetectorThresholds",
    "Detectors",
    "Hit",
    "Rule",
]
