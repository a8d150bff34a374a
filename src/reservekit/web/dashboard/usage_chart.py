"""Usage charts as SVG written on the server: no chart library in the browser, no script at all.

The SVG is inlined in the page and styled by dashboard.css through classes (``o-ok``, ``limit``, …), so
the strict Content-Security-Policy (no inline style or script) holds. Every number drawn is also in the
page's table; the SVG carries a title and a description for screen readers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from markupsafe import Markup, escape

# SPEC §4's outcomes in the order the checks run, "ok" first; unknown ones are drawn after these.
OUTCOMES: tuple[str, ...] = (
    "ok",
    "rate_limited",
    "revoked",
    "expired",
    "origin_mismatch",
    "scope_denied",
    "missing",
    "malformed",
    "invalid",
)
OUTCOME_LABELS: dict[str, str] = {
    "ok": "OK",
    "rate_limited": "Rate limited",
    "revoked": "Revoked key",
    "expired": "Expired key",
    "origin_mismatch": "Origin mismatch",
    "scope_denied": "Scope denied",
    "missing": "Missing key",
    "malformed": "Malformed key",
    "invalid": "Invalid key",
}

WIDTH, HEIGHT = 880, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 34
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def label_of(outcome: str) -> str:
    return OUTCOME_LABELS.get(outcome, outcome.replace("_", " "))


def ordered_outcomes(present: Sequence[str]) -> list[str]:
    known = [o for o in OUTCOMES if o in present]
    return known + sorted(o for o in present if o not in OUTCOMES)


def slots(since: datetime, until: datetime, width: timedelta) -> list[datetime]:
    """Every bucket start from the one holding ``since`` to the one holding the last instant before
    ``until``, aligned to the epoch like the usage series."""
    step = int(width.total_seconds())
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = int((since - epoch).total_seconds()) // step * step
    last = int((until - epoch - timedelta(microseconds=1)).total_seconds()) // step * step
    return [epoch + timedelta(seconds=s) for s in range(first, last + 1, step)]


def nice_ceiling(value: float) -> int:
    """A round top for the y axis (1, 2 or 5 times a power of ten) at or above ``value``."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= value:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def tick_label(moment: datetime, width: timedelta) -> str:
    if width >= timedelta(days=1):
        return moment.strftime("%d %b")
    if width >= timedelta(hours=1):
        return moment.strftime("%d %b %H:00") if moment.hour == 0 else moment.strftime("%H:00")
    return moment.strftime("%H:%M")


def _frame(title: str, description: str, ident: str, top: int, body: list[str]) -> Markup:
    lines = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ident}-t">{escape(title)}</title>',
        f'<desc id="{ident}-d">{escape(description)}</desc>',
    ]
    for i in range(5):  # grid lines and y labels at 0, ¼, ½, ¾ and the top
        value = top * i / 4
        y = TOP + PLOT_H - PLOT_H * i / 4
        text = f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"
        lines.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        lines.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')
    lines.extend(body)
    lines.append("</svg>")
    # Every value interpolated above is a number or passed through escape(): the markup is ours.
    return Markup("\n".join(lines))  # noqa: S704


def _x_labels(starts: Sequence[datetime], width: timedelta) -> list[str]:
    if not starts:
        return []
    every = max(1, len(starts) // 8)
    slot = PLOT_W / len(starts)
    labels = []
    for i in range(0, len(starts), every):
        x = LEFT + slot * (i + 0.5)
        label = escape(tick_label(starts[i], width))
        labels.append(
            f'<text class="axis" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{label}</text>'
        )
    return labels


def outcome_chart(
    starts: Sequence[datetime], counts: Sequence[Mapping[str, int]], width: timedelta, *, ident: str
) -> Markup:
    """Stacked bars: requests per bucket, one colour per outcome, "ok" at the bottom."""
    outcomes = ordered_outcomes(sorted({o for c in counts for o in c}))
    top = nice_ceiling(max((sum(c.values()) for c in counts), default=0))
    slot = PLOT_W / max(1, len(starts))
    bar = max(1.0, slot * 0.8)
    body: list[str] = []
    for i, bucket in enumerate(counts):
        base = 0
        x = LEFT + slot * i + (slot - bar) / 2
        for outcome in outcomes:
            n = bucket.get(outcome, 0)
            if not n:
                continue
            y = TOP + PLOT_H - PLOT_H * (base + n) / top
            h = PLOT_H * n / top
            body.append(
                f'<rect class="o-{escape(outcome)}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{max(h, 0.5):.1f}"><title>{escape(tick_label(starts[i], width))}: '
                f"{n} {escape(label_of(outcome))}</title></rect>"
            )
            base += n
    body.extend(_x_labels(starts, width))
    total = sum(sum(c.values()) for c in counts)
    description = f"{total} requests in {len(starts)} buckets; the table below has every number."
    return _frame("Requests by outcome", description, ident, top, body)


def rate_chart(
    starts: Sequence[datetime], peaks: Sequence[int], limit: int | None, width: timedelta, *, ident: str
) -> Markup:
    """The busiest minute of each bucket against the plan's per-minute limit (a dashed line)."""
    top = nice_ceiling(max([*peaks, limit or 0]) * 1.1)
    slot = PLOT_W / max(1, len(starts))
    bar = max(1.0, slot * 0.8)
    body: list[str] = []
    for i, peak in enumerate(peaks):
        if not peak:
            continue
        x = LEFT + slot * i + (slot - bar) / 2
        h = PLOT_H * peak / top
        over = " over" if limit is not None and peak >= limit else ""
        body.append(
            f'<rect class="peak{over}" x="{x:.1f}" y="{TOP + PLOT_H - h:.1f}" width="{bar:.1f}" '
            f'height="{max(h, 0.5):.1f}"><title>{escape(tick_label(starts[i], width))}: '
            f"{peak} requests in the busiest minute</title></rect>"
        )
    if limit is not None:
        y = TOP + PLOT_H - PLOT_H * limit / top
        body.append(f'<line class="limit" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        body.append(
            f'<text class="limit-label" x="{WIDTH - RIGHT - 4}" y="{y - 5:.1f}" text-anchor="end">'
            f"plan limit {limit}/min</text>"
        )
    body.extend(_x_labels(starts, width))
    busiest = max(peaks, default=0)
    description = f"Busiest minute: {busiest} requests" + (
        f"; the plan allows {limit} per minute." if limit is not None else "."
    )
    return _frame("Requests per minute (busiest minute of each bucket)", description, ident, top, body)
