"""Feedback from people and escalation of unanswered alerts, in event time (offline replay).

``quiet`` owes an instalment due 2025-01-10 and never pays; a busy neighbour moves the partition's
clock. Without feedback the 30-days-past-due floor raises amber at the 2025-02-09 sweep and, with
the default amber SLA of 48 hours, the first sweep at or after 2025-02-11 00:00 breaches it.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from config.rules import DEFAULT_RULES, Escalation, RulesError, load_rules, parse_rules
from detectors.alert import Alert, AlertKind, Level
from detectors.engine import RiskDetector
from detectors.events import Source
from detectors.levels import AlertState, Clock
from detectors.state import CustomerState
from streams.applier import apply_batch
from streams.feedback import feedback_message
from streams.merge import Pending, merge_key
from streams.records import DecodeError, ErrorCode, decode_feedback
from streams.replay import Recorded, replay
from tests.unit.test_sweep import DECODERS, TOPICS, daily_spend, silent_debtor

AMBER_AT = datetime(2025, 2, 9, tzinfo=UTC)
BREACH_AT = datetime(2025, 2, 11, tzinfo=UTC)


def answer(customer: str, action: str, ts: datetime, n: int = 1, **extra: Any) -> Recorded:
    body = feedback_message(customer, action, "ops-anna", ts, event_id=f"fb-{n}", **extra)
    return Recorded(TOPICS.feedback, customer.encode(), orjson.dumps(body))


def run(*feedback: Recorded, days: int = 130, rules: Any = None) -> list[Alert]:
    detector = RiskDetector(rules or load_rules(), "scorecard-0")
    messages = silent_debtor() + daily_spend("busy", days) + list(feedback)
    result = replay(messages, DECODERS, detector, partitions=1)
    return [a for a in result.alerts if a.customer_id == "quiet"]


def amber(alerts: list[Alert]) -> Alert:
    (raised,) = [a for a in alerts if a.level is Level.AMBER and not a.sla_breach]
    return raised


def breaches(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.sla_breach]


# --------------------------------------------------------------------------- escalation


def test_an_unanswered_amber_alert_is_escalated_once_at_the_first_sweep_after_its_sla() -> None:
    alerts = run(days=60)
    raised = amber(alerts)
    assert raised.event_time == AMBER_AT
    (breach,) = breaches(alerts)
    assert breach.escalates == raised.alert_id
    assert breach.kind is AlertKind.ESCALATED
    assert breach.level is breach.previous_level is Level.AMBER
    assert breach.event_time == BREACH_AT
    wire = breach.to_dict(BREACH_AT)
    assert wire["sla_breach"] is True and wire["escalates"] == raised.alert_id
    assert raised.to_dict(AMBER_AT)["sla_breach"] is False


def test_the_red_alert_starts_its_own_shorter_clock() -> None:
    alerts = run()
    red = [a for a in alerts if a.level is Level.RED and not a.sla_breach]
    assert len(red) == 1
    red_breach = [b for b in breaches(alerts) if b.escalates == red[0].alert_id]
    assert len(red_breach) == 1
    assert timedelta(hours=24) <= red_breach[0].event_time - red[0].event_time <= timedelta(days=2)


def test_an_acknowledgement_before_the_deadline_stops_the_clock() -> None:
    """The amber alert leaves when the busy neighbour's 12:00 event sweeps 02-09; a person
    answers it after that."""
    raised = amber(run(days=60))
    ack = answer("quiet", "acknowledge", AMBER_AT + timedelta(hours=13), alert_id=raised.alert_id)
    alerts = run(ack, days=60)
    assert amber(alerts).alert_id == raised.alert_id
    assert breaches(alerts) == []


@pytest.mark.parametrize("action", ["acknowledge", "false_positive", "confirmed_risk", "resolve"])
def test_a_customer_wide_answer_stops_the_clock(action: str) -> None:
    alerts = run(answer("quiet", action, AMBER_AT + timedelta(hours=30)), days=60)
    assert breaches(alerts) == []


def test_an_answer_naming_another_alert_leaves_the_clock_running() -> None:
    ack = answer("quiet", "acknowledge", AMBER_AT + timedelta(hours=13), alert_id="0" * 32)
    assert len(breaches(run(ack, days=60))) == 1


def test_an_answer_after_the_deadline_comes_too_late_and_is_breached_once() -> None:
    """An hour before the deadline is in time. Five hours after it, before the day's sweep
    (which waits for the neighbour's 12:00 event): the answer itself finds the clock run out,
    so the breach is decided at the answer, at its time, and the sweep adds nothing."""
    raised = amber(run(days=60))
    on_time = answer(
        "quiet", "acknowledge", BREACH_AT - timedelta(hours=1), alert_id=raised.alert_id
    )
    assert breaches(run(on_time, days=60)) == []
    at = BREACH_AT + timedelta(hours=5)
    (breach,) = breaches(run(answer("quiet", "acknowledge", at, alert_id=raised.alert_id), days=60))
    assert breach.event_time == at and breach.trigger.event_id == "fb-1"
    assert breach.escalates == raised.alert_id


def test_levels_without_an_sla_never_escalate() -> None:
    rules = replace(load_rules(), escalation=Escalation(amber_hours=1e6, red_hours=1e6))
    assert breaches(run(rules=rules)) == []


def test_escalation_hours_are_validated() -> None:
    data = _rules_data()
    data["escalation"] = {"amber_hours": 0}
    with pytest.raises(RulesError, match="escalation"):
        parse_rules(data)
    data["escalation"] = {"amber_hours": 12, "blue_hours": 3}
    with pytest.raises(RulesError, match="unknown keys"):
        parse_rules(data)
    data["escalation"] = {"red_hours": 4}
    assert parse_rules(data).escalation == Escalation(amber_hours=48.0, red_hours=4.0)


# --------------------------------------------------------------------------- snooze


def test_a_snooze_mutes_notifications_until_it_ends_then_the_level_is_notified() -> None:
    snooze = answer(
        "quiet", "snooze", datetime(2025, 2, 1, tzinfo=UTC), until=datetime(2025, 3, 1, tzinfo=UTC)
    )
    alerts = run(snooze, days=60)
    notified = [a for a in alerts if not a.sla_breach]
    assert notified, "the level is tracked and notified once the snooze ends"
    assert notified[0].level is Level.AMBER
    assert notified[0].event_time == datetime(2025, 3, 1, tzinfo=UTC)


def test_the_red_hard_floor_notifies_through_a_snooze() -> None:
    until = datetime(2025, 12, 1, tzinfo=UTC)
    alerts = run(answer("quiet", "snooze", datetime(2025, 2, 1, tzinfo=UTC), until=until))
    notified = [a for a in alerts if not a.sla_breach]
    assert [a.level for a in notified] == [Level.RED]
    assert notified[0].reasons[0].code == "DPD_90_PLUS"


def test_a_snooze_of_one_reason_code_mutes_only_alerts_led_by_it() -> None:
    start, until = datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)
    other = answer("quiet", "snooze", start, until=until, reason_code="GAMBLING_SHARE")
    assert amber(run(other, days=60)).event_time == AMBER_AT
    led = answer("quiet", "snooze", start, until=until, reason_code="DPD_30_PLUS")
    assert [a for a in run(led, days=60) if a.event_time < until] == []


def test_unsnooze_lifts_the_snooze() -> None:
    start, until = datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
    snooze = answer("quiet", "snooze", start, 1, until=until)
    lift = answer("quiet", "unsnooze", datetime(2025, 2, 15, 10, tzinfo=UTC), 2)
    notified = [a for a in run(snooze, lift, days=60) if not a.sla_breach]
    # The sweep of 02-15 runs at the neighbour's 12:00 event, after the 10:00 unsnooze.
    assert notified[0].event_time == datetime(2025, 2, 15, tzinfo=UTC)


# --------------------------------------------------------------------------- labels, audit, time


def _state_with_history() -> tuple[RiskDetector, CustomerState]:
    detector = RiskDetector(load_rules(), "scorecard-0")
    result = replay(silent_debtor() + daily_spend("busy", 40), DECODERS, detector, partitions=1)
    return detector, result.states["quiet"]


def _apply(detector: RiskDetector, state: CustomerState, message: Recorded, offset: int) -> Any:
    event = decode_feedback(orjson.loads(message.value))
    item = Pending(merge_key(event), message.topic, 0, offset, event, None)
    stored = {b"quiet": state.encode()}
    return apply_batch(detector, stored.get, [item])


@pytest.mark.parametrize(("action", "label"), [("false_positive", False), ("confirmed_risk", True)])
def test_false_positive_and_confirmed_risk_become_human_labels(action: str, label: bool) -> None:
    detector, state = _state_with_history()
    ts = state.watermark + timedelta(hours=2)
    out = _apply(detector, state, answer("quiet", action, ts), 0)
    ((customer, example),) = out.examples
    assert customer == "quiet" and example.human and example.label is label
    assert example.snapshot_ts == state.watermark and example.matured_ts == ts
    features: dict[str, float] = {}
    for signal in state.signals:
        features.update(signal.score_one(state.watermark))
    assert example.features == features
    assert example.to_dict()["human"] is True


def test_feedback_is_audited_and_never_moves_the_customers_or_the_partitions_clock() -> None:
    detector, state = _state_with_history()
    later = state.watermark + timedelta(days=400)  # a wall-clock stamp far ahead of the stream
    out = _apply(detector, state, answer("quiet", "acknowledge", later), 0)
    assert [f.action.value for f in out.feedback] == ["acknowledge"]
    (written,) = [w for w in out.writes if w.key == b"quiet"]
    assert CustomerState.decode(written.value).watermark_ms == state.watermark_ms
    assert not [w for w in out.writes if w.key.startswith(b"\x00sweep")]


def test_feedback_for_an_unknown_customer_is_audited_without_creating_state() -> None:
    detector = RiskDetector(load_rules(), "scorecard-0")
    message = answer("nobody", "acknowledge", datetime(2025, 1, 1, tzinfo=UTC))
    event = decode_feedback(orjson.loads(message.value))
    out = apply_batch(
        detector, {}.get, [Pending(merge_key(event), TOPICS.feedback, 0, 0, event, None)]
    )
    assert [f.customer_id for f in out.feedback] == ["nobody"]
    assert out.writes == [] and out.alerts == []


def test_redelivered_feedback_is_skipped() -> None:
    detector, state = _state_with_history()
    message = answer("quiet", "confirmed_risk", state.watermark)
    event = decode_feedback(orjson.loads(message.value))
    first = detector.apply(state, event, Source(TOPICS.feedback, 0, 7))
    again = detector.apply(state, event, Source(TOPICS.feedback, 0, 7))
    assert not first.skipped and first.examples
    assert again.skipped and not again.examples


def test_alert_state_round_trips_with_a_clock_and_a_reason_snooze() -> None:
    state = AlertState(Level.AMBER, Level.AMBER, None, [1, 2, -1, -1], 99, "DPD_30_PLUS")
    state.sla = Clock("a" * 32, Level.AMBER, 12345)
    restored = AlertState.from_state(orjson.loads(orjson.dumps(state.to_state())))
    assert restored == state
    plain = AlertState()
    assert len(plain.to_state()) == 5  # states written before feedback existed still read
    assert AlertState.from_state(plain.to_state()) == plain


# --------------------------------------------------------------------------- the contract


def _wire(**changes: Any) -> dict[str, Any]:
    message = feedback_message("c1", "acknowledge", "ops-anna", datetime(2025, 3, 1, tzinfo=UTC))
    message.update(changes)
    return message


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"action": "approve"}, ErrorCode.BAD_ENUM),
        ({"actor": ""}, ErrorCode.BAD_ID),
        ({"actor": None}, ErrorCode.MISSING_FIELD),
        ({"action": "snooze"}, ErrorCode.MISSING_FIELD),
        ({"action": "snooze", "until": "2025-02-01T00:00:00Z"}, ErrorCode.INCONSISTENT),
        ({"until": "2025-04-01T00:00:00Z"}, ErrorCode.INCONSISTENT),
        ({"reason_code": "DPD_30_PLUS"}, ErrorCode.INCONSISTENT),
        ({"note": "x" * 2001}, ErrorCode.WRONG_TYPE),
        ({"ts": "2025-03-01T00:00:00+01:00"}, ErrorCode.NON_UTC_TIME),
    ],
)
def test_bad_feedback_is_refused_with_a_reason(changes: dict[str, Any], code: ErrorCode) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_feedback(_wire(**changes))
    assert caught.value.code is code


def test_feedback_message_builds_what_the_worker_accepts_and_refuses_what_it_would_not() -> None:
    ts, until = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    message = feedback_message("c1", "snooze", " ops-anna ", ts, until=until, note="on holiday")
    event = decode_feedback(message)
    assert event.actor == "ops-anna" and event.until == until and event.note == "on holiday"
    assert message["event_id"].startswith("fb-")
    with pytest.raises(ValueError, match="until is required"):
        feedback_message("c1", "snooze", "ops-anna", ts)
    with pytest.raises(ValueError, match="needs a zone"):
        feedback_message("c1", "acknowledge", "ops-anna", datetime(2025, 3, 1))


def _rules_data() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_RULES.read_text())
