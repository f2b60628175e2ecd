"""Backtest figures: truth read as documented, warnings counted against it, a report written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from config.settings import load_settings
from detectors.alert import Alert, AlertKind, Level, Trigger
from streams.backtest import burden, lead_days, level_figures, read_truth, run_backtest
from streams.simulator import generate, to_jsonl, truth_to_jsonl

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def warning(customer: str, level: Level, day: int, kind: AlertKind = AlertKind.RAISED) -> Alert:
    return Alert(
        alert_id=f"{customer}-{level.label}-{day}",
        customer_id=customer,
        kind=kind,
        level=level,
        previous_level=Level.NONE,
        score=0.5,
        reasons=(),
        trigger=Trigger("e", "t", 0, day),
        event_time=datetime(2025, 1, day, 12, tzinfo=UTC),
        model_version="m",
        rules_version="r",
    )


def write_truth(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def test_truth_takes_the_first_of_30_dpd_default_or_a_defaulting_evaluation(
    tmp_path: Path,
) -> None:
    """Simulator and data-set truths both read: bad from the earliest bad sign, else never."""
    truth = read_truth(
        write_truth(
            tmp_path / "t.jsonl",
            [
                {"customer_id": "a", "first_30dpd": "2025-03-01", "default_at": None},
                {"customer_id": "b", "default": True, "evaluate_at": "2005-10-01T00:00:00Z"},
                {"customer_id": "c", "default": False, "evaluate_at": "2005-10-01T00:00:00Z"},
                {"customer_id": "d", "first_30dpd": None},
            ],
        )
    )
    assert truth["a"].bad_at == datetime(2025, 3, 1, tzinfo=UTC) and truth["a"].label
    assert truth["b"].bad_at == truth["b"].evaluate_at and truth["b"].label
    assert truth["c"].bad_at is None and not truth["c"].label
    assert truth["d"].bad_at is None
    with pytest.raises(ValueError, match=r"t\.jsonl:1"):
        read_truth(write_truth(tmp_path / "t.jsonl", [{"first_30dpd": None}]))


def test_levels_lead_time_and_burden_count_warnings_before_going_bad(tmp_path: Path) -> None:
    """Recall counts a warning only on a day before going bad; precision is over the customers
    warned; downgrades and resolutions are no warnings; the burden is per 1,000 per month."""
    truth = read_truth(
        write_truth(
            tmp_path / "t.jsonl",
            [
                {"customer_id": "early", "first_30dpd": "2025-01-20"},
                {"customer_id": "late", "first_30dpd": "2025-01-05"},
                {"customer_id": "fine", "first_30dpd": None},
                {"customer_id": "quiet", "first_30dpd": None},
            ],
        )
    )
    alerts = [
        warning("early", Level.WATCH, 2),
        warning("early", Level.AMBER, 10),
        warning("late", Level.AMBER, 5),  # the day it went bad: no warning
        warning("fine", Level.AMBER, 3),
        warning("fine", Level.NONE, 20, AlertKind.RESOLVED),
    ]
    levels = level_figures(alerts, truth)
    assert levels["amber"] == {"alerts": 3, "customers": 3, "precision": 2 / 3, "recall": 0.5}
    assert levels["watch"]["recall"] == 0.5 and levels["red"]["customers"] == 0
    assert lead_days(alerts, truth) == [9.5, None]
    load = burden(alerts, truth, months=2.0)
    assert load["warnings"] == 4 and load["notifications"] == 5
    assert load["alerts_per_1000_per_month"] == pytest.approx(4 / 4 * 1000 / 2)
    assert load["healthy_alerts_per_1000_per_month"] == pytest.approx(1 / 2 * 1000 / 2)
    assert load["by_month"] == [{"month": "2025-01", "watch": 1, "amber": 3, "red": 0}]


def test_a_backtest_writes_both_reports_for_champion_and_challenger(tmp_path: Path) -> None:
    """A small simulated year: report.json and report.html, one figure set per variant, and
    the same input measured the same way twice."""
    stream = generate(customers=40, days=240, seed=5, deteriorating_share=0.5, malformed=2)
    to_jsonl(stream.messages, tmp_path / "sim.jsonl")
    truth_to_jsonl(stream.truth, tmp_path / "truth.jsonl")
    rules = Path("config/rules.toml").read_text().replace('"rules-5"', '"rules-1-copy"')
    (tmp_path / "rules.toml").write_text(rules)
    settings = load_settings({"EWS_MODEL_PUBLISH_EVERY": "20"})
    report = run_backtest(
        settings,
        tmp_path / "sim.jsonl",
        tmp_path / "truth.jsonl",
        tmp_path / "out",
        challenger=tmp_path / "rules.toml",
    )
    champion, challenger = report["variants"]
    assert (champion["name"], challenger["rules_version"]) == ("champion", "rules-1-copy")
    assert report["input"]["dead_letters"] == 2 and report["input"]["customers"] == 40
    assert champion["score"]["n"] > 0 and champion["levels"]["amber_or_red"]["alerts"] > 0
    for key in ("score", "levels", "lead_time", "burden"):
        assert champion[key] == challenger[key]  # same rules apart from the version
    written = orjson.loads((tmp_path / "out" / "report.json").read_bytes())
    assert written["variants"][0]["levels"] == champion["levels"]
    assert "<svg" in (tmp_path / "out" / "report.html").read_text()
