"""The order the Redis rebuild writes alerts in: the stream ids they first had."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from detectors.alert import Alert, AlertKind, Level, Trigger
from sinks.notifications import STREAM_ID_HEADER
from streams.rebuild import Message, ordered_alerts

EMITTED = datetime(2025, 3, 1, 12, tzinfo=UTC)


def message(alert_id: str, stream_id: str | None, emitted: datetime = EMITTED) -> Message:
    alert = Alert(
        alert_id=alert_id,
        customer_id="c1",
        kind=AlertKind.RAISED,
        level=Level.WATCH,
        previous_level=Level.NONE,
        score=0.3,
        reasons=(),
        trigger=Trigger("e1", "ews.transactions", 0, 1),
        event_time=EMITTED,
        model_version="scorecard-0",
        rules_version="rules-1",
    )
    headers = {} if stream_id is None else {STREAM_ID_HEADER: stream_id.encode()}
    return (b"c1", headers, orjson.dumps(alert.to_dict(emitted)))


def test_alerts_come_back_in_stream_id_order_once_each() -> None:
    """Partitions interleave on the topic; the stream ids restore Redis's order; repeats drop."""
    messages = [message("b", "200-1"), message("a", "200-0"), message("c", "100-5")]
    messages.append(message("a", "200-0"))  # the topic may repeat an alert
    out = ordered_alerts(messages)
    assert [(o.alert.alert_id, o.stream_id) for o in out] == [
        ("c", "100-5"),
        ("a", "200-0"),
        ("b", "200-1"),
    ]
    assert out[1].payload == messages[1][2]


def test_messages_without_a_stream_id_get_increasing_ids_from_their_emitted_time() -> None:
    """Old messages (no header) are placed by emitted_at, never on or below an earlier id."""
    ms = int(EMITTED.timestamp() * 1000)
    out = ordered_alerts([message("x", f"{ms}-3"), message("y", None), message("z", None)])
    ids = [o.stream_id for o in out]
    assert ids[0] == f"{ms}-3"
    assert ids[1:] == [f"{ms}-4", f"{ms}-5"]
