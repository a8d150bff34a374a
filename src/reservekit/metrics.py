"""Prometheus metrics, one registry per runtime (so tests and several apps in a process stay apart)."""

from __future__ import annotations

import platform
from collections.abc import Iterator, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from reservekit import __version__
from reservekit.auth.key_view import KeyView
from reservekit.auth.key_view_follower import KeyViewChecker
from reservekit.auth.outcomes import REFUSALS, Outcome
from reservekit.background import WakeUp
from reservekit.projecting.runner import ProjectionStatus
from reservekit.usage.writer import UsageWriter
from reservekit.webhooks.sender import AttemptResult

# Litestar appends "; charset=utf-8" to every text/* media type itself.
CONTENT_TYPE = "text/plain; version=0.0.4"
_OUTCOMES: tuple[Outcome, ...] = ("ok", *REFUSALS)
# Most answers take well under a millisecond; long-polls and the change feed's streams take seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _UsageCollector(Collector):
    def __init__(self, writer: UsageWriter) -> None:
        self._writer = writer

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        stats = self._writer.stats
        yield GaugeMetricFamily(
            "reservekit_usage_queue_depth", "Usage rows waiting to be written", value=self._writer.depth
        )
        yield CounterMetricFamily(
            "reservekit_usage_rows_written", "Usage rows written to the log", value=stats.written
        )
        yield CounterMetricFamily(
            "reservekit_usage_rows_dropped",
            "Usage rows given up (buffer full or database down)",
            value=stats.dropped,
        )
        yield CounterMetricFamily("reservekit_usage_writes", "Batched usage inserts", value=stats.writes)
        yield CounterMetricFamily(
            "reservekit_usage_write_failures", "Failed usage inserts (retried)", value=stats.failures
        )


class _KeyViewCollector(Collector):
    """The in-memory key view against the log: how far behind, and what the self-check found."""

    def __init__(self, view: KeyView, checker: KeyViewChecker) -> None:
        self._view = view
        self._checker = checker
        self.log_head = 0

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        view, checker = self._view, self._checker
        yield GaugeMetricFamily(
            "reservekit_key_view_position", "Last log position applied by the key view", value=view.position
        )
        yield GaugeMetricFamily(
            "reservekit_key_view_lag",
            "Log positions the key view is behind the log head",
            value=max(0, self.log_head - view.position),
        )
        yield GaugeMetricFamily("reservekit_key_view_keys", "Keys held in memory", value=len(view))
        mismatches = CounterMetricFamily(
            "reservekit_key_view_mismatches",
            "Differences between the key view and the log, by kind (each one healed)",
            labels=["kind"],
        )
        mismatches.add_metric(["chain"], view.mismatches)
        mismatches.add_metric(["cursor"], checker.cursor_mismatches)
        mismatches.add_metric(["key"], checker.keys_mismatched)
        mismatches.add_metric(["plan"], checker.plans_mismatched)
        yield mismatches
        yield CounterMetricFamily(
            "reservekit_key_view_heals",
            "Times the key view re-read the log from a verified position",
            value=view.heals,
        )
        last = checker.last
        yield GaugeMetricFamily(
            "reservekit_key_view_last_check_timestamp_seconds",
            "When the key view last compared itself with the log (0: not yet)",
            value=last.checked_at if last else 0,
        )
        yield GaugeMetricFamily(
            "reservekit_key_view_last_check_ok",
            "1 when the last self-check ended with the view equal to the log",
            value=1 if last is None or last.ok else 0,
        )


class _WakeUpLinkCollector(Collector):
    """The LISTEN/NOTIFY link of this replica (issue 10): up or down, and for how long."""

    def __init__(self, wakeup: WakeUp) -> None:
        self._wakeup = wakeup

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = self._wakeup.link_status()
        if status.state == "none":
            return
        yield GaugeMetricFamily(
            "reservekit_wakeup_link_up",
            "1 while the LISTEN connection that wakes tailers is up, 0 while tailers poll fast instead",
            value=1 if status.state == "up" else 0,
        )
        yield GaugeMetricFamily(
            "reservekit_wakeup_link_down_seconds",
            "Seconds the LISTEN link has been down (0 when up)",
            value=status.down_seconds,
        )


class Metrics:
    def __init__(self, usage: UsageWriter, key_view: KeyView, checker: KeyViewChecker) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        requests = Counter(
            "reservekit_requests",
            "API requests by authentication outcome",
            ["outcome"],
            registry=self.registry,
        )
        decisions = Counter(
            "reservekit_rate_limit_decisions",
            "Rate-limit decisions by result and by what was limited",
            ["decision", "limit"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "reservekit_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by method, route template and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._latency_children: dict[tuple[str, str, int], Histogram] = {}
        ProcessCollector(registry=self.registry)  # CPU, memory, open files, start time (Linux /proc)
        PlatformCollector(registry=self.registry)  # python_info
        Gauge(
            "reservekit_build_info",
            "Always 1; the labels name the running version and Python",
            ["version", "python"],
            registry=self.registry,
        ).labels(version=__version__, python=platform.python_version()).set(1)
        # Children resolved once: the hot path does a dict lookup and an increment.
        self._requests = {outcome: requests.labels(outcome=outcome) for outcome in _OUTCOMES}
        self._allowed = decisions.labels(decision="allowed", limit="account")
        self._denied_account = decisions.labels(decision="denied", limit="account")
        self._denied_ip = decisions.labels(decision="denied", limit="ip")
        self._lag = Gauge(
            "reservekit_projection_lag",
            "Log positions a projection is behind",
            ["projection"],
            registry=self.registry,
        )
        self.registry.register(_UsageCollector(usage))
        self._key_view = _KeyViewCollector(key_view, checker)
        self.registry.register(self._key_view)
        self._webhook_attempts = Counter(
            "reservekit_webhook_attempts",
            "Webhook delivery attempts by event type and outcome",
            ["event_type", "outcome"],
            registry=self.registry,
        )
        self._webhook_latency = Histogram(
            "reservekit_webhook_attempt_seconds",
            "Webhook delivery attempt latency, by outcome",
            ["outcome"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )

    def delivered(self, event_type: str, result: AttemptResult) -> None:
        """Called by the webhook dispatcher after every attempt."""
        self._webhook_attempts.labels(event_type=event_type, outcome=result.outcome).inc()
        self._webhook_latency.labels(outcome=result.outcome).observe(result.latency_ms / 1000)

    def watch_wakeup_link(self, wakeup: WakeUp) -> None:
        self.registry.register(_WakeUpLinkCollector(wakeup))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One finished request. ``method`` and ``route`` must come from bounded sets (request_log.py)."""
        labels = (method, route, status)
        child = self._latency_children.get(labels)
        if child is None:
            child = self._latency_children[labels] = self._latency.labels(method, route, str(status))
        child.observe(seconds)

    def observe(self, outcome: Outcome, *, per_ip: bool, quota_checked: bool) -> None:
        self._requests[outcome].inc()
        if outcome == "rate_limited":
            (self._denied_ip if per_ip else self._denied_account).inc()
        elif quota_checked:
            self._allowed.inc()

    def render(self, statuses: Sequence[ProjectionStatus], log_head: int) -> bytes:
        for status in statuses:
            self._lag.labels(projection=status.name).set(status.lag)
        self._key_view.log_head = log_head
        return generate_latest(self.registry)
