"""STAND-IN on branch ``web`` until main's ``streams/feedback.py`` lands (then replaced by it).

The same two functions as main's contract: :func:`feedback_message` builds a validated wire dict
for ``ews.feedback``; :func:`send_feedback` produces messages keyed by customer and waits for the
broker's ack.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from config.settings import Settings

ACTIONS = ("acknowledge", "snooze", "unsnooze", "false_positive", "confirmed_risk", "resolve")


def feedback_message(
    customer_id: str,
    action: str,
    actor: str,
    ts: datetime,
    *,
    alert_id: str | None = None,
    until: datetime | None = None,
    reason_code: str | None = None,
    note: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    if not customer_id:
        raise ValueError("customer_id must not be empty")
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    if not actor or not actor.strip():
        raise ValueError("actor must not be empty")
    if action == "snooze" and until is None:
        raise ValueError("a snooze needs until")
    return {
        "schema_version": 1,
        "event_id": event_id or f"fb-{uuid.uuid4().hex}",
        "customer_id": customer_id,
        "alert_id": alert_id,
        "ts": _rfc3339(ts),
        "action": action,
        "until": _rfc3339(until) if until is not None else None,
        "reason_code": reason_code,
        "actor": actor.strip(),
        "note": note,
    }


async def send_feedback(settings: Settings, messages: Sequence[dict[str, Any]]) -> None:
    topic = getattr(settings.topics, "feedback", f"{settings.topic_prefix or 'ews.'}feedback")
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", **settings.kafka_client_options()
    )
    await producer.start()
    try:
        for message in messages:
            await producer.send_and_wait(
                topic, orjson.dumps(message), key=message["customer_id"].encode()
            )
    finally:
        await producer.stop()


def _rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
