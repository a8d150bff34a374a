"""What the detectors remember between usage rows, as plain in-memory values (no I/O).

The ``usage_flags`` projection loads the slice of this state a batch touches, lets the rules run over
the batch, and writes back what changed (``dirty_*``). Every field is an integer or a string, so the
state survives a round trip through either database exactly, and a rebuild that cuts the log into
different batches reaches the same state.
"""

from __future__ import annotations

from typing import Any

import msgspec

from reservekit.clock import MINUTE_US


class KeyTrack(msgspec.Struct, kw_only=True):
    """Per key: when it was used, how often, and its per-minute rate baseline."""

    key_id: str
    account_id: str | None
    first_seen_us: int
    last_seen_us: int
    uses: int = 0
    minute: int = 0
    """The minute (``occurred_at_us // MINUTE_US``) being counted; late rows count into it."""
    minute_count: int = 0
    ewma_milli: int = 0
    """EWMA of the key's previous per-minute counts, in thousandths of a request (fixed point)."""
    history_minutes: int = 0
    """Closed minutes folded into the EWMA, idle ones included."""


class Window(msgspec.Struct, kw_only=True):
    """A sliding window: event times (oldest first) and each distinct value's last time in it."""

    times: list[int] = msgspec.field(default_factory=list)
    values: dict[str, int] = msgspec.field(default_factory=dict)

    def add(self, at_us: int, value: str | None, *, span_us: int, cap: int, count_times: bool) -> None:
        horizon = at_us - span_us
        if count_times:
            self.times.append(at_us)
            if self.times[0] <= horizon or len(self.times) > cap:
                self.times = [t for t in self.times if t > horizon][-cap:]
        values = self.values
        if value is not None:
            values[value] = max(at_us, values.get(value, at_us))
        # min() rather than any(…): it scans in C, and the usual answer (nothing expired) scans them all.
        if len(values) > cap or (values and min(values.values()) <= horizon):
            live = sorted(((t, v) for v, t in values.items() if t > horizon), reverse=True)[:cap]
            self.values = {v: t for t, v in live}

    @property
    def count(self) -> int:
        return len(self.times)

    def distinct(self, limit: int = 20) -> list[str]:
        return sorted(self.values)[:limit]

    def encode(self) -> str:
        return msgspec.json.encode({"t": self.times, "v": self.values}, order="sorted").decode()

    @classmethod
    def decode(cls, raw: str) -> Window:
        data = msgspec.json.decode(raw, type=dict[str, Any])
        return cls(times=list(data.get("t", [])), values=dict(data.get("v", {})))


class OpenFlag(msgspec.Struct, kw_only=True):
    """The latest flag of one (rule, subject); it absorbs hits until an ``episode_gap`` without one."""

    flag_id: str
    rule: str
    severity: str
    account_id: str | None
    key_id: str | None
    client_ip: str | None
    subject: str
    first_seen_us: int
    last_seen_us: int
    hits: int
    evidence: dict[str, Any]


class DetectorState:
    """The slice of detector memory one batch needs, and what the batch changed."""

    def __init__(self) -> None:
        self.keys: dict[str, KeyTrack] = {}
        self.known_ips: set[tuple[str, str]] = set()
        self.windows: dict[tuple[str, str], Window] = {}
        self.heads: dict[tuple[str, str], OpenFlag] = {}
        self.dirty_keys: set[str] = set()
        self.new_ips: dict[tuple[str, str], int] = {}
        self.dirty_windows: set[tuple[str, str]] = set()
        self.dirty_flags: dict[str, OpenFlag] = {}

    def track(self, key_id: str, account_id: str | None, at_us: int) -> KeyTrack:
        track = self.keys.get(key_id)
        if track is None:
            track = KeyTrack(
                key_id=key_id,
                account_id=account_id,
                first_seen_us=at_us,
                last_seen_us=at_us,
                minute=at_us // MINUTE_US,
            )
            self.keys[key_id] = track
        if account_id is not None:
            track.account_id = account_id
        self.dirty_keys.add(key_id)
        return track

    def learn_ip(self, key_id: str, client_ip: str, at_us: int) -> bool:
        """Remember the IP for the key; True if it was new."""
        pair = (key_id, client_ip)
        if pair in self.known_ips:
            return False
        self.known_ips.add(pair)
        self.new_ips[pair] = at_us
        return True

    def window(self, rule: str, subject: str) -> Window:
        key = (rule, subject)
        self.dirty_windows.add(key)
        window = self.windows.get(key)
        if window is None:  # not setdefault: that would build a Window for every row
            window = self.windows[key] = Window()
        return window

    def save_flag(self, flag: OpenFlag) -> None:
        self.heads[(flag.rule, flag.subject)] = flag
        self.dirty_flags[flag.flag_id] = flag

    def mark_saved(self) -> None:
        """Everything changed so far is stored: what changes next is dirty again."""
        self.dirty_keys.clear()
        self.new_ips.clear()
        self.dirty_windows.clear()
        self.dirty_flags.clear()

    @property
    def entries(self) -> int:
        """How much it holds (keys, known IPs, windows, open flags): what a replay bounds."""
        return len(self.keys) + len(self.known_ips) + len(self.windows) + len(self.heads)
