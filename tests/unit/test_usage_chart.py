"""The server-drawn usage charts: bucket slots, the y axis, the plan's limit line, and escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reservekit.web.dashboard.usage_chart import nice_ceiling, outcome_chart, rate_chart, slots

T = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


def test_slots_cover_every_bucket_that_overlaps_the_range() -> None:
    minutes = slots(T - timedelta(hours=1), T, timedelta(minutes=1))
    assert (minutes[0], minutes[-1], len(minutes)) == (T.replace(hour=11, second=0), T.replace(second=0), 61)
    aligned = slots(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC), timedelta(hours=1))
    assert len(aligned) == 24  # until is exclusive


def test_the_y_axis_tops_at_a_round_number() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 10, 11, 66, 600, 601)] == [
        1,
        1,
        5,
        10,
        10,
        20,
        100,
        1000,
        1000,
    ]


def test_the_rate_chart_draws_the_limit_and_marks_minutes_over_it() -> None:
    starts = slots(T - timedelta(hours=1), T, timedelta(minutes=1))
    peaks = [0] * len(starts)
    peaks[3], peaks[4] = 12, 60
    svg = rate_chart(starts, peaks, 60, timedelta(minutes=1), ident="r")
    assert 'class="limit"' in svg
    assert "plan limit 60/min" in svg
    assert svg.count('class="peak over"') == 1
    assert svg.count('class="peak"') == 1
    assert "Busiest minute: 60 requests; the plan allows 60 per minute." in svg


def test_outcome_bars_stack_to_the_bucket_total_and_names_are_escaped() -> None:
    starts = [T.replace(minute=0, second=0), T.replace(minute=1, second=0)]
    counts = [{"ok": 3, "revoked": 1}, {"<script>": 2}]
    svg = outcome_chart(starts, counts, timedelta(minutes=1), ident="o")
    assert svg.count("<rect") == 3
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "6 requests in 2 buckets" in svg
