"""The evaluation report: ROC points, PR AUC, calibration bins, lead time and the HTML page."""

from __future__ import annotations

import copy
import itertools
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.calibration import roc_auc
from streams.report_html import render_html
from streams.report_metrics import (
    average_precision,
    calibration_bins,
    lead_time_summary,
    roc_curve,
)

# --- roc_curve ----------------------------------------------------------------------------

scored = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=1.0), st.booleans()), min_size=2, max_size=80
).filter(lambda xs: any(y for _, y in xs) and not all(y for _, y in xs))


@given(scored, st.integers(min_value=2, max_value=30))
def test_roc_runs_from_origin_to_corner_and_never_falls(
    data: list[tuple[float, bool]], max_points: int
) -> None:
    """Any ROC curve starts at (0, 0), ends at (1, 1), never decreases and respects max_points."""
    points = roc_curve([s for s, _ in data], [y for _, y in data], max_points=max_points)
    assert points[0] == (0.0, 0.0)
    assert points[-1] == (1.0, 1.0)
    assert len(points) <= max_points
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        assert x1 >= x0 and y1 >= y0


@given(scored)
def test_roc_area_matches_roc_auc(data: list[tuple[float, bool]]) -> None:
    """Unthinned, the trapezoid area under the points equals the Mann-Whitney ROC AUC."""
    scores, labels = [s for s, _ in data], [y for _, y in data]
    points = roc_curve(scores, labels, max_points=10_000)
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in itertools.pairwise(points))
    assert area == pytest.approx(roc_auc(scores, labels))


def test_roc_perfect_and_reversed_rankings() -> None:
    """A perfect ranking goes through (0, 1); a reversed one through (1, 0)."""
    scores = [0.9, 0.8, 0.3, 0.1]
    assert roc_curve(scores, [True, True, False, False]) == [
        (0.0, 0.0),
        (0.0, 0.5),
        (0.0, 1.0),
        (0.5, 1.0),
        (1.0, 1.0),
    ]
    assert roc_curve(scores, [False, False, True, True]) == [
        (0.0, 0.0),
        (0.5, 0.0),
        (1.0, 0.0),
        (1.0, 0.5),
        (1.0, 1.0),
    ]


def test_roc_tied_scores_are_one_step() -> None:
    """Equal scores move the curve once, diagonally, not through an arbitrary order."""
    assert roc_curve([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == [(0.0, 0.0), (1.0, 1.0)]
    assert roc_curve([0.9, 0.5, 0.5, 0.1], [True, True, False, False]) == [
        (0.0, 0.0),
        (0.0, 0.5),
        (0.5, 1.0),
        (1.0, 1.0),
    ]


def test_roc_thinning_keeps_the_end_points() -> None:
    """A 1,000-point curve thinned to 7 points keeps (0, 0) and (1, 1)."""
    scores = [i / 1000 for i in range(1000)]
    labels = [i % 3 == 0 for i in range(1000)]
    points = roc_curve(scores, labels, max_points=7)
    assert len(points) == 7
    assert points[0] == (0.0, 0.0) and points[-1] == (1.0, 1.0)


def test_roc_rejects_one_class_and_bad_input() -> None:
    """No negatives, no positives, mismatched lengths or max_points < 2 raise ValueError."""
    with pytest.raises(ValueError):
        roc_curve([0.1, 0.2], [True, True])
    with pytest.raises(ValueError):
        roc_curve([0.1, 0.2], [False, False])
    with pytest.raises(ValueError):
        roc_curve([0.1, 0.2], [True])
    with pytest.raises(ValueError):
        roc_curve([0.1, 0.2], [True, False], max_points=1)


# --- average_precision --------------------------------------------------------------------


def test_average_precision_hand_computed() -> None:
    """scikit-learn's documented example gives 0.8333; a perfect ranking gives 1."""
    # thresholds 0.8 (R .5, P 1), 0.4 (no new positive), 0.35 (R 1, P 2/3): .5 + .5 * 2/3
    assert average_precision([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(
        5 / 6
    )
    assert average_precision([0.9, 0.8, 0.2], [True, True, False]) == pytest.approx(1.0)


def test_average_precision_ties_are_one_threshold() -> None:
    """Tied scores enter together: all-tied gives the prevalence; a tied pair counts once."""
    assert average_precision([0.5] * 4, [True, False, False, False]) == pytest.approx(0.25)
    # 0.9 -> (tp 0, fp 1); 0.5 tie -> (1, 2): R .5, P 1/3; 0.1 -> (2, 2): R 1, P 1/2
    scores = [0.9, 0.5, 0.5, 0.1]
    assert average_precision(scores, [False, True, False, True]) == pytest.approx(0.5 / 3 + 0.5 / 2)


def test_average_precision_needs_a_positive() -> None:
    """With no positive label average precision is undefined and raises ValueError."""
    with pytest.raises(ValueError, match="positive"):
        average_precision([0.3, 0.7], [False, False])


# --- calibration_bins ---------------------------------------------------------------------


def test_calibration_bins_counts_and_observed_rates() -> None:
    """Counts sum to n, empty bins are left out, observed is the share of positives per bin."""
    probs = [0.05, 0.05, 0.15, 0.95, 0.95, 0.95, 0.95, 1.0]
    labels = [False, True, False, True, True, True, False, True]
    bins = calibration_bins(probs, labels, bins=10)
    assert sum(b["count"] for b in bins) == len(probs)
    assert [(b["low"], b["high"]) for b in bins] == [(0.0, 0.1), (0.1, 0.2), (0.9, 1.0)]
    assert [b["count"] for b in bins] == [2, 1, 5]
    assert [b["observed"] for b in bins] == [0.5, 0.0, 0.8]
    assert bins[2]["mean_predicted"] == pytest.approx((0.95 * 4 + 1.0) / 5)


def test_calibration_bins_rejects_out_of_range_probabilities() -> None:
    """A probability outside [0, 1] raises ValueError instead of landing in a wrong bin."""
    with pytest.raises(ValueError):
        calibration_bins([1.2], [True])


# --- lead_time_summary --------------------------------------------------------------------


def test_lead_time_summary_hand_example() -> None:
    """Median over the warned, shares over all bad customers, 15-day buckets up to the max."""
    summary = lead_time_summary([10, 20, 31, 65, 95, None, None, 0.0])
    assert summary["bad_customers"] == 8
    assert summary["warned"] == 6
    assert summary["median_days"] == pytest.approx(25.5)  # of 0, 10, 20, 31, 65, 95
    assert summary["share_30"] == pytest.approx(3 / 8)
    assert summary["share_60"] == pytest.approx(2 / 8)
    assert summary["share_90"] == pytest.approx(1 / 8)
    histogram = summary["histogram"]
    assert [(b["from_days"], b["to_days"]) for b in histogram] == [
        (15 * i, 15 * (i + 1)) for i in range(7)
    ]
    assert [b["count"] for b in histogram] == [2, 1, 1, 0, 1, 0, 1]


def test_lead_time_summary_with_none_warned_and_none_bad() -> None:
    """No warned customer gives no median and an empty histogram; no bad customer, no shares."""
    never = lead_time_summary([None, None])
    assert never["warned"] == 0 and never["median_days"] is None
    assert never["share_30"] == 0.0 and never["histogram"] == []
    empty = lead_time_summary([])
    assert empty["bad_customers"] == 0 and empty["share_90"] is None


def test_lead_time_summary_rejects_negative_days() -> None:
    """A warning after going bad is not a lead time: negative days raise ValueError."""
    with pytest.raises(ValueError):
        lead_time_summary([-1.0])


# --- render_html --------------------------------------------------------------------------

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr"}


class TagChecker(HTMLParser):
    """Fails on a closing tag that does not match the innermost open one."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1:]}>"
        self.open.pop()


def check_page(page: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.open == [], f"unclosed tags: {checker.open}"
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        root = ET.fromstring(svg)  # each chart is well-formed XML on its own
        assert root.get("role") == "img"
        assert root.find("{http://www.w3.org/2000/svg}title") is not None
    return checker


def figures(name: str, auc: float) -> dict[str, Any]:
    level = {"alerts": 120, "customers": 40, "precision": 0.25, "recall": 0.5}
    return {
        "name": name,
        "rules_version": "rules-1",
        "model_version": "model-12",
        "score": {
            "n": 1000,
            "positives": 37,
            "roc_auc": auc,
            "pr_auc": 0.4123,
            "brier": 0.0521,
            "ece": 0.0123,
            "roc_curve": [[0.0, 0.0], [0.1, 0.6], [0.4, 0.9], [1.0, 1.0]],
            "calibration": [
                {"low": 0.0, "high": 0.1, "mean_predicted": 0.04, "observed": 0.03, "count": 800},
                {"low": 0.5, "high": 0.6, "mean_predicted": 0.55, "observed": 0.6, "count": 200},
            ],
        },
        "levels": {lv: dict(level) for lv in ("watch", "amber", "red", "amber_or_red")},
        "lead_time": lead_time_summary([10, 20, 31, 65, None]),
        "burden": {
            "alerts_per_1000_per_month": 12.345,
            "healthy_alerts_per_1000_per_month": 8.5,
            "by_month": [
                {"month": "2025-01", "watch": 10, "amber": 4, "red": 1},
                {"month": "2025-02", "watch": 7, "amber": 0, "red": 3},
            ],
        },
    }


REPORT: dict[str, Any] = {
    "input": {
        "path": "data/events.jsonl",
        "events": 123456,
        "dead_letters": 3,
        "customers": 1000,
        "first_day": "2025-01-01",
        "last_day": "2025-02-28",
        "months": 1.93,
    },
    "variants": [figures("champion", 0.81234)],
}


def test_page_is_well_formed_and_has_the_required_structure() -> None:
    """The page closes every tag, has lang, a title, main, h1, caption, figures and four SVGs."""
    page = render_html(REPORT)
    tags = check_page(page).tags
    assert '<html lang="en">' in page
    for tag in ("title", "main", "h1", "table", "caption", "figure", "figcaption"):
        assert tag in tags, tag
    assert tags.count("svg") == 4
    assert "<script" not in page
    assert 'scope="col"' in page and 'scope="row"' in page


def test_page_formats_figures() -> None:
    """AUC-style figures get 3 decimals, rates 1-decimal percentages, counts thousands commas."""
    page = render_html(REPORT)
    for text in ("0.812", "0.412", "0.052", "0.012", "25.0%", "50.0%", "12.3", "123,456"):
        assert text in page, text
    assert "1,000 / 37" in page


def test_hostile_strings_are_escaped() -> None:
    """A script tag in the input path or a variant name never reaches the page raw."""
    report = copy.deepcopy(REPORT)
    hostile = "<script>alert(1)</script>"
    report["input"]["path"] = hostile
    report["variants"][0]["name"] = hostile
    report["variants"][0]["burden"]["by_month"][0]["month"] = hostile
    page = render_html(report)
    assert hostile not in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    check_page(page)


def test_two_variants_get_two_columns_and_both_curves() -> None:
    """With a challenger the table has two variant columns and the ROC chart two polylines."""
    report = copy.deepcopy(REPORT)
    report["variants"].append(figures("challenger-model", 0.85))
    page = render_html(report)
    check_page(page)
    assert "Challenger" in page and "challenger-model" in page
    assert "0.850" in page
    roc = re.search(r'<svg[^>]*aria-labelledby="roc-title.*?</svg>', page, flags=re.S)
    assert roc is not None and roc.group(0).count("<polyline") == 2
    assert 'stroke-dasharray="7 4"' in roc.group(0)  # the challenger is dashed, not just coloured


def test_missing_figures_show_na_without_crashing() -> None:
    """None figures, no curves, no histogram, no months and no variants all render as n/a."""
    report = copy.deepcopy(REPORT)
    variant = report["variants"][0]
    variant["score"].update(roc_auc=None, pr_auc=None, roc_curve=[], calibration=[])
    variant["levels"]["red"]["precision"] = None
    variant["lead_time"] = lead_time_summary([None])
    del variant["burden"]
    page = render_html(report)
    check_page(page)
    assert page.count("n/a") >= 6
    assert "<svg" not in page  # all four charts fall back to an n/a note
    bare = render_html({})
    check_page(bare)
    assert "n/a" in bare
