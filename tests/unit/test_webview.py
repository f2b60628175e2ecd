"""The web view's pure parts: escaping, links, the health strip and snapshots, feedback forms."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from config.rules import load_rules
from detectors.engine import RiskDetector
from sinks.redis import RedisLayout
from streams import webpages
from streams.health import Heartbeat, Snapshot, summarize
from streams.pipeline import Counters
from streams.webview import build_feedback, parse_until, sse, valid_customer_id

EVIL = "<script>alert(1)</script>"
T0 = datetime(2025, 5, 2, 9, 30, tzinfo=UTC)


def alert(customer_id: str = "c0001", **changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "alert_id": "a" * 32,
        "customer_id": customer_id,
        "kind": "escalated",
        "level": "red",
        "previous_level": "amber",
        "score": 0.81,
        "reasons": [{"code": "DPD", "text": "91 days past due", "value": 91, "contribution": 5}],
        "trigger": {"event_id": "rp-1", "topic": "ews.repayments", "partition": 1, "offset": 7},
        "event_time": "2025-05-02T09:30:00.000Z",
    }
    value.update(changes)
    return value


def feedback_entry(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "kind": "feedback",
        "event_id": "fb-1",
        "customer_id": "c0001",
        "alert_id": "a" * 32,
        "action": "acknowledge",
        "actor": "Dana",
        "note": None,
        "ts": "2025-05-02T10:00:00.000Z",
        "until": None,
        "reason_code": None,
    }
    value.update(changes)
    return value


def snapshot(**changes: Any) -> Snapshot:
    values: dict[str, Any] = {
        "worker_id": "host:1",
        "at": T0,
        "events_per_s": 120.5,
        "applied": 1000,
        "lag": 3,
        "dead_letters": 2,
        "alerts": 9,
        "model_version": "scorecard-0",
        "rules_version": "rules-1",
        "labels_learned": 40,
        "human_labels": None,
        "labels_matured": 55,
        "event_time": T0,
    }
    values.update(changes)
    return Snapshot(**values)


def view(**changes: Any) -> webpages.CustomerView:
    values: dict[str, Any] = {
        "customer_id": "c0001",
        "fields": {"level": "red", "score": "0.810000", "reasons": "[]"},
        "alerts": [alert()],
        "feedback": [],
    }
    values.update(changes)
    return webpages.CustomerView(**values)


def scripts(page: str) -> list[str]:
    return re.findall(r"<script[^>]*>", page)


def test_script_in_customer_id_reason_and_note_is_shown_as_text() -> None:
    """Event and Redis data are escaped on every page: only the view's own script tag runs."""
    reasons = f'[{{"code": "X", "text": "{EVIL}"}}]'
    page = webpages.customer_page(
        view(
            customer_id=EVIL,
            fields={"level": "red", "score": "0.5", "reasons": reasons},
            alerts=[alert(EVIL, reasons=[{"code": EVIL, "text": EVIL}])],
            feedback=[feedback_entry(note=EVIL, actor=EVIL)],
        ),
        summarize([]),
    )
    assert scripts(page) == ['<script src="/static/webview.js" defer>']
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    row = webpages.alert_row(alert(EVIL, reasons=[{"code": "X", "text": EVIL}]), "1-0")
    assert scripts(row) == []
    assert 'href="/customers/%3Cscript%3Ealert%281%29%3C%2Fscript%3E"' in row


def test_customer_links_quote_the_id() -> None:
    """A slash, a space or a quote in an id cannot leave the customer's path or attribute."""
    assert webpages.customer_href('a/b c"d') == "/customers/a%2Fb%20c%22d"
    assert valid_customer_id("c0001")
    assert not valid_customer_id("")
    assert not valid_customer_id("x" * 129)
    assert not valid_customer_id("a\nb")


def test_sla_breach_is_marked_in_the_feed_and_the_table() -> None:
    """An escalation for an unanswered alert says so; an ordinary one does not."""
    breach = alert(sla_breach=True, escalates="b" * 32)
    assert "SLA breach" in webpages.alert_row(breach)
    assert "data-sla" in webpages.alert_row(breach)
    assert "SLA breach" not in webpages.alert_row(alert())
    assert "SLA breach" in webpages.customer_page(view(alerts=[breach]), summarize([]))


def test_answered_alerts_show_who_answered_instead_of_a_button() -> None:
    """An acknowledged alert names the actor; an open one offers the acknowledge button."""
    other = alert(alert_id="b" * 32)
    page = webpages.customer_page(
        view(alerts=[other, alert()], feedback=[feedback_entry()]), summarize([])
    )
    assert f'value="acknowledge:{"b" * 32}"' in page
    assert f'value="acknowledge:{"a" * 32}"' not in page
    assert "Acknowledged by Dana" in page


def test_history_split_keeps_alerts_and_feedback_apart() -> None:
    """Feedback audit entries and alerts share the history list; unknown kinds are dropped."""
    alerts, notes = webpages.split_history(
        [feedback_entry(), alert(), {"kind": "mystery"}, alert(kind="resolved")]
    )
    assert [a["kind"] for a in alerts] == ["escalated", "resolved"]
    assert [n["event_id"] for n in notes] == ["fb-1"]


def test_pages_have_language_labels_and_a_live_feed() -> None:
    """Basic accessibility: lang, a label per input, aria-live on the feed."""
    page = webpages.customer_page(view(), summarize([snapshot()]))
    assert '<html lang="en">' in page
    for input_id in ("actor", "note", "until", "reason_code"):
        assert f'<label for="{input_id}">' in page
    assert 'id="actor" name="actor" required' in page
    feed = webpages.feed_page([("5-0", alert())], [], summarize([]), "5-0")
    assert re.search(r'<ol id="feed"[^>]*aria-live="polite"', feed)
    assert 'data-last-id="5-0"' in feed


def test_health_strip_sums_workers_and_says_when_stale() -> None:
    """Rates and counts add up over workers; no live snapshot reads as stale."""
    health = summarize(
        [
            snapshot(),
            snapshot(worker_id="host:2", lag=4, human_labels=3, event_time=T0 + timedelta(1)),
        ]
    )
    assert (health.workers, health.lag, health.dead_letters, health.events_per_s) == (2, 7, 4, 241)
    assert health.human_labels == 3
    assert health.event_time == T0 + timedelta(days=1)
    strip = webpages.health_strip(health)
    assert "<dd>7</dd>" in strip and "3 from people" in strip and "stale" not in strip.lower()
    assert "Stale" in webpages.health_strip(summarize([]))


def test_snapshot_round_trips_through_redis_fields() -> None:
    """What a worker writes is what the view reads; an expired (empty) hash is no snapshot."""
    for one in (snapshot(), snapshot(human_labels=4, event_time=None)):
        assert Snapshot.from_fields(one.to_fields()) == one
        as_bytes = {k.encode(): v.encode() for k, v in one.to_fields().items()}
        assert Snapshot.from_fields(as_bytes) == one
    assert Snapshot.from_fields({}) is None


def test_heartbeat_reports_the_rate_over_its_interval() -> None:
    """Events applied per second since the previous beat, and the pipeline's event time."""
    ticks = iter([100.0, 105.0, 110.0])
    counters = Counters(applied=0, dead_letters=1, alerts=2, examples=3)
    pipeline = SimpleNamespace(
        counters=counters,
        detector=RiskDetector(load_rules(None), "scorecard-0"),
        event_time=T0,
    )
    probes: Any = SimpleNamespace(pipeline=pipeline, lag=lambda: {("t", 0): 4, ("t", 1): 1})
    beat = Heartbeat(None, RedisLayout(), probes, name="w1", monotonic=lambda: next(ticks))  # type: ignore[arg-type]
    counters.applied = 500
    first = beat.snapshot()
    counters.applied = 600
    second = beat.snapshot()
    assert (first.events_per_s, second.events_per_s) == (100.0, 20.0)
    assert (second.lag, second.dead_letters, second.alerts, second.labels_matured) == (5, 1, 2, 3)
    assert second.event_time == T0 and second.model_version == "scorecard-0"


def test_feedback_form_becomes_one_valid_message() -> None:
    """Acknowledge names one of the customer's alerts; snooze carries until and reason code."""
    ack = build_feedback(view(), {"action": f"acknowledge:{'a' * 32}", "actor": " Dana "}, T0)
    assert (ack["action"], ack["alert_id"], ack["actor"], ack["customer_id"]) == (
        "acknowledge",
        "a" * 32,
        "Dana",
        "c0001",
    )
    assert ack["ts"].startswith("2025-05-02T09:30")
    form = {"action": "snooze", "actor": "Dana", "until": "2025-06-01", "reason_code": "DPD"}
    snooze = build_feedback(view(), form, T0)
    assert snooze["until"].startswith("2025-06-01T00:00") and snooze["reason_code"] == "DPD"
    assert snooze["alert_id"] is None


@pytest.mark.parametrize(
    "form",
    [
        {"action": f"acknowledge:{'c' * 32}", "actor": "Dana"},  # not this customer's alert
        {"action": "snooze", "actor": "Dana", "until": ""},  # a snooze needs until
        {"action": "resolve", "actor": ""},  # an actor is required
        {"action": "delete", "actor": "Dana"},
        {"action": f"resolve:{'a' * 32}", "actor": "Dana"},
        {"action": "snooze", "actor": "Dana", "until": "soon"},
    ],
)
def test_bad_feedback_forms_are_refused_with_a_reason(form: dict[str, str]) -> None:
    """Every malformed form raises ValueError with a message for the page."""
    with pytest.raises(ValueError, match=r"\w"):
        build_feedback(view(), form, T0)


def test_until_is_read_as_utc() -> None:
    assert parse_until("2025-06-01") == datetime(2025, 6, 1, tzinfo=UTC)
    assert parse_until("2025-06-01T08:30") == datetime(2025, 6, 1, 8, 30, tzinfo=UTC)


def test_server_sent_events_frame_every_line() -> None:
    """A multi-line payload stays one event; the id lets a browser resume."""
    assert sse("alert", "<li>\nx</li>", "5-1") == (
        b"event: alert\nid: 5-1\ndata: <li>\ndata: x</li>\n\n"
    )
    assert sse("health", "") == b"event: health\ndata: \n\n"


def test_sparkline_draws_the_scores_inside_its_box() -> None:
    """Oldest left, riskier higher, the latest as a dot; one alert still shows."""
    line = webpages.sparkline([0.0, 1.0], width=100, height=20, pad=2)
    assert 'points="2.0,18.0 98.0,2.0"' in line and 'cx="98.0" cy="2.0"' in line
    assert "<circle" in webpages.sparkline([0.4])
    assert webpages.sparkline([]) == ""


def test_trigger_events_and_sweeps_are_told_apart() -> None:
    """An alert names the event that raised it; a sweep's alert says it was the midnight sweep."""
    page = webpages.customer_page(
        view(
            alerts=[alert(), alert(alert_id="b" * 32, trigger={"topic": "sweep", "partition": 2})]
        ),
        summarize([]),
    )
    assert "rp-1<br><small>ews.repayments partition 1, offset 7" in page
    assert "event-time sweep at midnight<br><small>partition 2" in page
