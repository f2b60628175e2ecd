"""Backtests: replay a recording with learning on, then measure how early and how precisely the
system warned, against the ground truth, for a champion rules file and an optional challenger.

Ground truth is one JSON object per customer. A customer is **bad** from ``bad_at``: the first of
``first_30dpd`` (simulator), ``default_at``, or ``evaluate_at`` when ``default`` is true (public
data sets); never bad if none applies. ``evaluate_at``, when given, is the moment the customer's
outcome is judged; the system's score just before it (the last score from an event or a sweep
visit strictly earlier) is the customer-level score.

Figures (see :mod:`streams.report_html` for the report's shape):

- ``score``: every matured label, scored by the live blend of scorecard and published model
  before the model learns it (prequential): ROC AUC, PR AUC (average precision), Brier, ECE;
- ``customer_score``: the same over customers at ``evaluate_at``, when the truth has it;
- ``levels``: warnings (alerts of kind raised or escalated) at exactly each level, the customers
  they name, precision (share of those customers who are bad) and recall (share of bad customers
  warned at that level on a day before they went bad); ``amber_or_red`` joins the two;
- ``lead_time``: per bad customer, days from the first amber or red warning to going bad;
- ``burden``: warnings per 1,000 customers per month, also for customers never bad, by month.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from config.settings import Settings
from detectors.alert import Alert, AlertKind, Level
from detectors.calibration import brier, expected_calibration_error, roc_auc
from detectors.engine import RiskDetector
from streams.replay import Learner, ReplayResult
from streams.replaying import detector_for, replay_recording
from streams.report_html import render_html
from streams.report_metrics import (
    average_precision,
    calibration_bins,
    lead_time_summary,
    roc_curve,
)

DAYS_PER_MONTH = 365.25 / 12
WARNINGS = frozenset({AlertKind.RAISED, AlertKind.ESCALATED})
LEVELS = {
    "watch": {Level.WATCH},
    "amber": {Level.AMBER},
    "red": {Level.RED},
    "amber_or_red": {Level.AMBER, Level.RED},
}


@dataclass(frozen=True, slots=True)
class Truth:
    customer_id: str
    bad_at: datetime | None
    evaluate_at: datetime | None
    label: bool  # bad at evaluate_at (or ever, without one)


def read_truth(path: str | os.PathLike[str]) -> dict[str, Truth]:
    truth: dict[str, Truth] = {}
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
                item = _truth(row)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: not a truth record: {exc!r}") from None
            truth[item.customer_id] = item
    return truth


def _truth(row: dict[str, Any]) -> Truth:
    evaluate_at = _moment(row.get("evaluate_at"))
    candidates = [_moment(row.get("first_30dpd")), _moment(row.get("default_at"))]
    if row.get("default") is True:
        candidates.append(evaluate_at)
    known = [c for c in candidates if c is not None]
    bad_at = min(known) if known else None
    label = bad_at is not None and (evaluate_at is None or bad_at <= evaluate_at)
    return Truth(str(row["customer_id"]), bad_at, evaluate_at, label)


def _moment(value: Any) -> datetime | None:
    """A date (midnight UTC) or an RFC 3339 time; ``None`` stays ``None``."""
    if value is None:
        return None
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return datetime.fromisoformat(value).astimezone(UTC)


class _Observer:
    """The replay's trace: the time span, and each customer's score just before evaluation."""

    def __init__(self, truth: Mapping[str, Truth]) -> None:
        self.evaluate_at = {c: t.evaluate_at for c, t in truth.items() if t.evaluate_at}
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.before: dict[str, float] = {}

    def __call__(self, customer_id: str, at: datetime, score: float) -> None:
        if self.first is None or at < self.first:
            self.first = at
        if self.last is None or at > self.last:
            self.last = at
        deadline = self.evaluate_at.get(customer_id)
        if deadline is not None and at < deadline:
            self.before[customer_id] = score


def run_backtest(
    settings: Settings,
    input_path: str | Path,
    truth_path: str | Path,
    report_dir: str | Path,
    challenger: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Replay ``input_path`` once per variant, write ``report.json`` and ``report.html``."""
    truth = read_truth(truth_path)
    variants = [("champion", settings.rules_file)]
    if challenger is not None:
        variants.append(("challenger", str(challenger)))
    figures, summary = [], {}
    for name, rules_file in variants:
        observer = _Observer(truth)
        detector, learner = detector_for(settings, rules_file)
        result = replay_recording(settings, input_path, detector, learner, observer, progress)
        figures.append(variant_figures(name, detector, result, learner, truth, observer))
        summary = _input_summary(input_path, result, truth, observer)
    report = {"input": summary, "variants": figures}
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    (out / "report.html").write_text(render_html(report), encoding="utf-8")
    return report


def _input_summary(
    path: str | Path, result: ReplayResult, truth: Mapping[str, Truth], observer: _Observer
) -> dict[str, Any]:
    first, last = observer.first, observer.last
    return {
        "path": str(path),
        "events": result.messages,
        "dead_letters": len(result.dead_letters),
        "customers": len(truth),
        "first_day": first.date().isoformat() if first else None,
        "last_day": last.date().isoformat() if last else None,
        "months": round(_months(first, last), 2),
    }


def _months(first: datetime | None, last: datetime | None) -> float:
    if first is None or last is None:
        return 0.0
    return max((last - first) / timedelta(days=DAYS_PER_MONTH), 1 / DAYS_PER_MONTH)


def variant_figures(
    name: str,
    detector: RiskDetector,
    result: ReplayResult,
    learner: Learner | None,
    truth: Mapping[str, Truth],
    observer: _Observer,
) -> dict[str, Any]:
    labels = learner.scored if learner is not None else []
    customers = [c for c in observer.before if c in truth]
    return {
        "name": name,
        "rules_version": detector.rules.version,
        "model_version": detector.model_version,
        "labels_learned": len(labels),
        "score": score_figures([s.probability for s in labels], [s.label for s in labels]),
        "customer_score": score_figures(
            [observer.before[c] for c in customers], [truth[c].label for c in customers]
        ),
        "levels": level_figures(result.alerts, truth),
        "lead_time": lead_time_summary(lead_days(result.alerts, truth)),
        "burden": burden(result.alerts, truth, _months(observer.first, observer.last)),
        "alerts": len(result.alerts),
    }


def score_figures(probs: list[float], labels: list[bool]) -> dict[str, Any]:
    positives = sum(labels)
    both = 0 < positives < len(labels)
    return {
        "n": len(labels),
        "positives": positives,
        "roc_auc": roc_auc(probs, labels) if both else None,
        "pr_auc": average_precision(probs, labels) if both else None,
        "brier": brier(probs, labels) if labels else None,
        "ece": expected_calibration_error(probs, labels) if labels else None,
        "roc_curve": [list(point) for point in roc_curve(probs, labels)] if both else [],
        "calibration": calibration_bins(probs, labels) if labels else [],
    }


def _first_warnings(alerts: Iterable[Alert], levels: set[Level]) -> dict[str, datetime]:
    first: dict[str, datetime] = {}
    for alert in alerts:
        if alert.kind in WARNINGS and alert.level in levels:
            known = first.get(alert.customer_id)
            if known is None or alert.event_time < known:
                first[alert.customer_id] = alert.event_time
    return first


def _before(warned_at: datetime, bad_at: datetime) -> bool:
    """Warned on a day before the customer went bad (a same-day warning is no warning)."""
    return warned_at.date() < bad_at.date()


def level_figures(alerts: list[Alert], truth: Mapping[str, Truth]) -> dict[str, Any]:
    bad = {c: t.bad_at for c, t in truth.items() if t.bad_at is not None}
    out: dict[str, Any] = {}
    for name, levels in LEVELS.items():
        count = sum(1 for a in alerts if a.kind in WARNINGS and a.level in levels)
        first = _first_warnings(alerts, levels)
        named = [c for c in first if c in truth]
        early = [c for c, at in bad.items() if c in first and _before(first[c], at)]
        out[name] = {
            "alerts": count,
            "customers": len(named),
            "precision": sum(1 for c in named if c in bad) / len(named) if named else None,
            "recall": len(early) / len(bad) if bad else None,
        }
    return out


def lead_days(alerts: list[Alert], truth: Mapping[str, Truth]) -> list[float | None]:
    """Per bad customer: days from the first amber or red warning to going bad, or ``None``."""
    first = _first_warnings(alerts, LEVELS["amber_or_red"])
    out: list[float | None] = []
    for customer_id, item in sorted(truth.items()):
        if item.bad_at is None:
            continue
        warned = first.get(customer_id)
        ok = warned is not None and _before(warned, item.bad_at)
        out.append((item.bad_at - warned) / timedelta(days=1) if ok and warned else None)
    return out


def burden(alerts: list[Alert], truth: Mapping[str, Truth], months: float) -> dict[str, Any]:
    healthy = {c for c, t in truth.items() if t.bad_at is None}
    warnings = [a for a in alerts if a.kind in WARNINGS]
    on_healthy = sum(1 for a in warnings if a.customer_id in healthy)
    by_month: dict[str, Counter[str]] = defaultdict(Counter)
    for alert in warnings:
        by_month[alert.event_time.strftime("%Y-%m")][alert.level.label] += 1
    per = 1000 / months if months > 0 else 0.0
    return {
        "warnings": len(warnings),
        "notifications": len(alerts),
        "alerts_per_1000_per_month": len(warnings) / max(len(truth), 1) * per,
        "healthy_alerts_per_1000_per_month": on_healthy / max(len(healthy), 1) * per,
        "by_month": [
            {"month": month, **{level: counts[level] for level in ("watch", "amber", "red")}}
            for month, counts in sorted(by_month.items())
        ],
    }
