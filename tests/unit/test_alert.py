"""The alert: deterministic alert_id and the v1 wire form."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from detectors.alert import Alert, AlertKind, Level, Reason, Trigger, alert_id

BASE: dict[str, Any] = {
    "customer_id": "cust-1",
    "kind": AlertKind.RAISED,
    "level": Level.AMBER,
    "trigger_event_id": "evt-9",
    "rules_version": "rules-1",
    "model_version": "scorecard-0",
}
RFC3339_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _alert(**changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "alert_id": alert_id(**BASE),
        "customer_id": "cust-1",
        "kind": AlertKind.ESCALATED,
        "level": Level.RED,
        "previous_level": Level.AMBER,
        "score": 0.812345678,
        "reasons": (
            Reason("DPD_90_PLUS", "91 days past due: at least red by rule", 91.0, 0.0),
            Reason("DPD", "91 days past due", 91.0, 5.4600000001),
            Reason("MISSED_INSTALMENTS", "2 instalment(s) not paid at all", 2.0, 1.0),
        ),
        "trigger": Trigger("evt-9", "ews.repayments", 3, 1234),
        "event_time": datetime(2025, 5, 2, 9, 30, 15, 250_000, tzinfo=UTC),
        "model_version": "scorecard-0",
        "rules_version": "rules-1",
    }
    fields.update(changes)
    return Alert(**fields)


def test_alert_id_is_deterministic_hex() -> None:
    """The same decision under the same versions always has the same 32-hex-char id."""
    first = alert_id(**BASE)
    assert first == alert_id(**BASE)
    assert re.fullmatch(r"[0-9a-f]{32}", first)


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("customer_id", "cust-2"),
        ("kind", AlertKind.ESCALATED),
        ("level", Level.RED),
        ("trigger_event_id", "evt-10"),
        ("rules_version", "rules-5"),
        ("model_version", "model-7"),
    ],
)
def test_alert_id_changes_with_each_component(field: str, other: Any) -> None:
    """Changing any of customer, kind, level, trigger event or either version changes the id."""
    assert alert_id(**{**BASE, field: other}) != alert_id(**BASE)


def test_alert_id_components_do_not_run_together() -> None:
    """Moving characters between adjacent components gives a different id."""
    a = alert_id(**{**BASE, "customer_id": "ab", "trigger_event_id": "c"})
    b = alert_id(**{**BASE, "customer_id": "a", "trigger_event_id": "bc"})
    c = alert_id(**{**BASE, "rules_version": "r1x", "model_version": "m"})
    d = alert_id(**{**BASE, "rules_version": "r1", "model_version": "xm"})
    assert a != b
    assert c != d


def test_to_dict_has_every_contract_field() -> None:
    """The wire form has exactly the v1 contract fields, with labels and RFC 3339 Z times."""
    emitted = datetime(2025, 5, 2, 9, 30, 16, tzinfo=UTC)
    wire = _alert().to_dict(emitted)
    assert set(wire) == {
        "alert_id",
        "customer_id",
        "kind",
        "level",
        "previous_level",
        "score",
        "reasons",
        "trigger",
        "event_time",
        "emitted_at",
        "model_version",
        "rules_version",
        "features_hash",
        "sla_breach",
        "escalates",
        "schema_version",
    }
    assert wire["schema_version"] == 1
    assert wire["alert_id"] == alert_id(**BASE)
    assert (wire["customer_id"], wire["kind"]) == ("cust-1", "escalated")
    assert (wire["level"], wire["previous_level"]) == ("red", "amber")
    assert wire["score"] == pytest.approx(0.812346)
    assert wire["trigger"] == {
        "event_id": "evt-9",
        "topic": "ews.repayments",
        "partition": 3,
        "offset": 1234,
    }
    assert wire["event_time"] == "2025-05-02T09:30:15.250Z"
    assert wire["emitted_at"] == "2025-05-02T09:30:16.000Z"
    for key in ("event_time", "emitted_at"):
        assert RFC3339_Z.fullmatch(wire[key])
    assert (wire["model_version"], wire["rules_version"]) == ("scorecard-0", "rules-1")
    assert orjson.loads(orjson.dumps(wire)) == wire


def test_reasons_on_the_wire() -> None:
    """Reasons are at most four, each with code, text, value and contribution."""
    wire = _alert().to_dict(datetime(2025, 5, 2, tzinfo=UTC))
    assert 1 <= len(wire["reasons"]) <= 4
    for reason in wire["reasons"]:
        assert set(reason) == {"code", "text", "value", "contribution"}
        assert reason["code"] and reason["text"]
        assert isinstance(reason["value"], float)
        assert isinstance(reason["contribution"], float)
    assert wire["reasons"][0] == {
        "code": "DPD_90_PLUS",
        "text": "91 days past due: at least red by rule",
        "value": 91.0,
        "contribution": 0.0,
    }
    assert wire["reasons"][1]["contribution"] == 5.46


@pytest.mark.parametrize("level", list(Level))
def test_level_labels_round_trip(level: Level) -> None:
    """Level labels on the wire parse back to the same level, in none<watch<amber<red order."""
    assert Level.parse(level.label) is level
    assert [lv.label for lv in sorted(Level)] == ["none", "watch", "amber", "red"]


def test_wire_form_reads_back_to_an_alert_with_the_same_wire_form() -> None:
    """from_dict(to_dict(a)) writes the same wire bytes (what the Redis rebuild relies on)."""
    emitted = datetime(2025, 5, 2, 10, tzinfo=UTC)
    wire = orjson.dumps(_alert().to_dict(emitted))
    back = Alert.from_dict(orjson.loads(wire))
    assert orjson.dumps(back.to_dict(emitted)) == wire
    assert back.event_time == _alert().event_time
    assert back.level is Level.RED and back.kind is AlertKind.ESCALATED
