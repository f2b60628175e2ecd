"""The Prometheus text exposition written by ``streams.metrics``."""

from __future__ import annotations

import math

import pytest

from sinks.delivery import LatencyHistogram
from streams.metrics import Family, Sample, histogram, render


def test_counters_and_gauges_render_with_help_type_and_labels() -> None:
    """HELP and TYPE lines precede the samples; integers print without a decimal point."""
    text = render(
        [
            Family("ews_events_in_total", "counter", "Input messages.", [Sample(12)]),
            Family(
                "ews_alerts_total",
                "counter",
                "Alerts.",
                [Sample(3, {"level": "red", "kind": "raised"}), Sample(1.5, {"level": "amber"})],
            ),
        ]
    )
    assert text == (
        "# HELP ews_events_in_total Input messages.\n"
        "# TYPE ews_events_in_total counter\n"
        "ews_events_in_total 12\n"
        "# HELP ews_alerts_total Alerts.\n"
        "# TYPE ews_alerts_total counter\n"
        'ews_alerts_total{level="red",kind="raised"} 3\n'
        'ews_alerts_total{level="amber"} 1.5\n'
    )


def test_label_values_and_help_are_escaped() -> None:
    """Backslash, double quote and newline are escaped as the format requires."""
    text = render([Family("m", "gauge", "a\\b\nc", [Sample(1, {"version": 'x"y\\z\nw'})])])
    assert "# HELP m a\\\\b\\nc\n" in text
    assert 'm{version="x\\"y\\\\z\\nw"} 1\n' in text


def test_special_values() -> None:
    """NaN and infinities use the format's spellings."""
    text = render(
        [Family("m", "gauge", "h", [Sample(math.nan), Sample(math.inf), Sample(-math.inf)])]
    )
    assert text.splitlines()[2:] == ["m NaN", "m +Inf", "m -Inf"]


def test_histogram_buckets_are_cumulative_and_end_with_inf() -> None:
    """Per-bucket counts become cumulative ``le`` buckets, then ``_sum`` and ``_count``."""
    latency = LatencyHistogram(bounds=(0.01, 0.1))
    for seconds in (0.005, 0.01, 0.05, 0.5, 2.0):
        latency.observe(seconds)
    family = histogram("lat", "h", latency.bounds, latency.counts, latency.sum_s)
    lines = render([family]).splitlines()[2:]
    assert lines == [
        'lat_bucket{le="0.01"} 2',
        'lat_bucket{le="0.1"} 3',
        'lat_bucket{le="+Inf"} 5',
        "lat_sum 2.565",
        "lat_count 5",
    ]


def test_histogram_needs_one_count_per_bucket_and_one_for_inf() -> None:
    """A count list of the wrong length is a programming error, raised at once."""
    with pytest.raises(ValueError):
        histogram("lat", "h", (1.0,), [1], 0.0)
