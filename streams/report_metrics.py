"""Pure metrics for the offline evaluation report: ROC points, PR AUC, calibration bins, lead time.

ROC AUC, the Brier score and the expected calibration error live in
:mod:`detectors.calibration` (``roc_auc``, ``brier``, ``expected_calibration_error``); this module
adds only what the report draws or tabulates beyond them. :func:`calibration_bins` bins exactly as
``expected_calibration_error`` does, so the chart and the ECE describe the same bins. No I/O.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = [
    "LEAD_BUCKET_DAYS",
    "LEAD_SHARE_DAYS",
    "average_precision",
    "calibration_bins",
    "lead_time_summary",
    "roc_curve",
]

LEAD_BUCKET_DAYS = 15
"""Width of one lead-time histogram bucket, in days."""

LEAD_SHARE_DAYS = (30, 60, 90)
"""Lead times reported as "share of bad customers warned at least this many days ahead"."""


def _check(values: Sequence[float], labels: Sequence[bool]) -> None:
    if len(values) != len(labels):
        raise ValueError(f"{len(values)} scores but {len(labels)} labels")
    if not values:
        raise ValueError("need at least one example")
    if not all(math.isfinite(v) for v in values):
        raise ValueError("scores must be finite")


def _steps(scores: Sequence[float], labels: Sequence[bool]) -> Iterator[tuple[int, int]]:
    """Cumulative (true positives, false positives) after each distinct score, highest first.

    Examples with equal scores are one threshold, so they enter together as one step.
    """
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
    tp = fp = 0
    for k, i in enumerate(order):
        if labels[i]:
            tp += 1
        else:
            fp += 1
        if k + 1 == len(order) or scores[order[k + 1]] != scores[i]:
            yield tp, fp


def _thin(points: list[tuple[float, float]], max_points: int) -> list[tuple[float, float]]:
    """At most ``max_points`` evenly spaced points, always keeping the first and the last."""
    if len(points) <= max_points:
        return points
    last = len(points) - 1
    keep = sorted({round(i * last / (max_points - 1)) for i in range(max_points)})
    return [points[i] for i in keep]


def roc_curve(
    scores: Sequence[float], labels: Sequence[bool], max_points: int = 200
) -> list[tuple[float, float]]:
    """ROC points ``(false positive rate, true positive rate)`` from ``(0, 0)`` to ``(1, 1)``.

    Higher scores mean riskier. One point per distinct score (ties are one step), then thinned
    to at most ``max_points`` points. Needs at least one positive and one negative label.
    """
    _check(scores, labels)
    if max_points < 2:
        raise ValueError("max_points must be at least 2 (the two end points)")
    steps = list(_steps(scores, labels))
    positives, negatives = steps[-1]
    if positives == 0 or negatives == 0:
        raise ValueError("a ROC curve needs at least one positive and one negative label")
    points = [(0.0, 0.0)] + [(fp / negatives, tp / positives) for tp, fp in steps]
    return _thin(points, max_points)


def average_precision(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """PR AUC as average precision: the sum over thresholds of ``(R_n - R_(n-1)) * P_n``.

    This is scikit-learn's definition (no interpolation); equal scores are one threshold.
    Raises ``ValueError`` when there is no positive label.
    """
    _check(scores, labels)
    steps = list(_steps(scores, labels))
    positives = steps[-1][0]
    if positives == 0:
        raise ValueError("average precision needs at least one positive label")
    total = 0.0
    previous_tp = 0
    for tp, fp in steps:
        if tp > previous_tp:
            total += (tp - previous_tp) / positives * (tp / (tp + fp))
        previous_tp = tp
    return total


def calibration_bins(
    probs: Sequence[float], labels: Sequence[bool], bins: int = 10
) -> list[dict[str, float]]:
    """Equal-width bins over ``[0, 1]``: each non-empty bin's mean prediction and outcome rate.

    Each bin is ``{"low", "high", "mean_predicted", "observed", "count"}``; ``observed`` is the
    share of positive labels. A probability of exactly 1 falls in the last bin.
    """
    _check(probs, labels)
    if bins < 1:
        raise ValueError("bins must be at least 1")
    if not all(0.0 <= p <= 1.0 for p in probs):
        raise ValueError("probabilities must lie in [0, 1]")
    count = [0] * bins
    prob_sum = [0.0] * bins
    pos = [0] * bins
    for p, y in zip(probs, labels, strict=True):
        i = min(int(p * bins), bins - 1)
        count[i] += 1
        prob_sum[i] += p
        pos[i] += 1 if y else 0
    return [
        {
            "low": i / bins,
            "high": (i + 1) / bins,
            "mean_predicted": prob_sum[i] / count[i],
            "observed": pos[i] / count[i],
            "count": count[i],
        }
        for i in range(bins)
        if count[i]
    ]


def lead_time_summary(lead_days: Sequence[float | None]) -> dict[str, Any]:
    """How far ahead bad customers were warned: counts, median, shares and a histogram.

    ``lead_days`` holds one entry per customer who went bad: the days from their first warning
    to going bad, or ``None`` when they were not warned before. Shares are over all bad
    customers (``None`` when there are none); the median and the histogram cover the warned
    ones only. Histogram buckets are ``LEAD_BUCKET_DAYS`` wide, ``[from_days, to_days)``, from 0
    up to the bucket holding the longest lead time, empty buckets included.
    """
    warned: list[float] = []
    for days in lead_days:
        if days is None:
            continue
        if not math.isfinite(days) or days < 0:
            raise ValueError(f"lead time must be a finite number of days >= 0, got {days!r}")
        warned.append(float(days))
    total = len(lead_days)
    summary: dict[str, Any] = {
        "bad_customers": total,
        "warned": len(warned),
        "median_days": statistics.median(warned) if warned else None,
    }
    for threshold in LEAD_SHARE_DAYS:
        ahead = sum(1 for days in warned if days >= threshold)
        summary[f"share_{threshold}"] = ahead / total if total else None
    summary["histogram"] = _histogram(warned)
    return summary


def _histogram(days: list[float]) -> list[dict[str, int]]:
    if not days:
        return []
    counts = [0] * (int(max(days) // LEAD_BUCKET_DAYS) + 1)
    for d in days:
        counts[int(d // LEAD_BUCKET_DAYS)] += 1
    return [
        {"from_days": i * LEAD_BUCKET_DAYS, "to_days": (i + 1) * LEAD_BUCKET_DAYS, "count": c}
        for i, c in enumerate(counts)
    ]
