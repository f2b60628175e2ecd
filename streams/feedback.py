"""Feedback from people onto ``ews.feedback``: build a message, check it, produce it.

The web view and the terminal commands (``ews alerts ack``, ``ews customer snooze``) both build
messages with :func:`feedback_message`, which runs the worker's own decoder over what it built,
so a message that leaves here is one the worker accepts, and send them with
:func:`send_feedback`, which returns once the broker has acknowledged them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaProducer

from streams.records import SCHEMA_VERSION, DecodeError, decode_feedback

if TYPE_CHECKING:
    from config.settings import Settings


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
    """The wire form (contract v1) of one answer; ``ValueError`` naming the field if the
    worker would refuse it. ``event_id`` defaults to a fresh random id."""
    message: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id or f"fb-{uuid.uuid4().hex}",
        "customer_id": customer_id,
        "alert_id": alert_id or None,
        "ts": _rfc3339(ts),
        "action": action,
        "until": _rfc3339(until) if until is not None else None,
        "reason_code": reason_code or None,
        "actor": actor.strip(),
        "note": note or None,
    }
    try:
        decode_feedback(message)
    except DecodeError as exc:
        raise ValueError(exc.message) from None
    return message


async def send_feedback(settings: Settings, messages: Sequence[dict[str, Any]]) -> None:
    """Produce ``messages`` to the feedback topic, keyed by customer, and wait for the acks."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        **settings.kafka_client_options(),
    )
    await producer.start()
    try:
        for message in messages:
            await producer.send_and_wait(
                settings.topics.feedback,
                orjson.dumps(message),
                key=str(message["customer_id"]).encode(),
            )
    finally:
        await producer.stop()


def _rfc3339(ts: datetime) -> str:
    if ts.tzinfo is None:
        raise ValueError(f"time {ts.isoformat()} needs a zone (UTC)")
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
