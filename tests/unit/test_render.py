"""The one-line alert rendering used by ``ews alerts tail`` and the demo."""

from __future__ import annotations

from streams.render import format_alert, format_history_entry

ALERT = {
    "event_time": "2025-03-22T00:00:00.000Z",
    "level": "amber",
    "kind": "escalated",
    "previous_level": "watch",
    "customer_id": "c0026",
    "score": 0.4631,
    "reasons": [
        {"code": "DPD", "text": "14 days past due"},
        {"code": "INFLOW_MISSING", "text": "salary credit of about 2,400 expected on 2025-03-01"},
    ],
    "model_version": "model-12",
    "rules_version": "rules-1",
}


def test_line_names_level_change_score_reasons_and_versions() -> None:
    line = format_alert(ALERT)
    for part in (
        "AMBER",
        "escalated",
        "c0026",
        "score 0.46",
        "(from watch)",
        "14 days past due; salary credit of about 2,400 expected on 2025-03-01",
        "[model model-12, rules rules-1]",
    ):
        assert part in line, part


def test_colour_only_on_request() -> None:
    assert "\x1b[" not in format_alert(ALERT)
    assert "\x1b[33m" in format_alert(ALERT, colour=True)


def test_history_shows_alerts_as_alerts_and_answers_as_the_audit_trail() -> None:
    """``ews customer show`` prints a customer's history, which holds feedback entries too."""
    assert format_history_entry(ALERT) == format_alert(ALERT)
    answer = {
        "kind": "feedback",
        "ts": "2025-03-23T09:00:00.000Z",
        "action": "snooze",
        "alert_id": None,
        "until": "2025-04-01T00:00:00.000Z",
        "actor": "ops-anna",
        "note": "on holiday",
    }
    line = format_history_entry(answer)
    assert line == (
        "2025-03-23T09:00:00.000Z  snooze of the customer until 2025-04-01T00:00:00.000Z "
        'by ops-anna  "on holiday"'
    )
