"""What ``ews alerts ack`` and ``ews customer snooze`` do: build one feedback message, stamped
with the stream clock (``streams.health.feedback_time``), and produce it.

An ``alert_id`` is a hash and names no customer, while feedback is keyed by customer. The
alert's dedupe key in Redis holds its entry id in the alert stream (``pending|published {id}``),
and that entry holds the alert: two reads, whatever the stream's length. An alert whose dedupe
key has expired (``EWS_REDIS_DEDUPE_TTL_S``) or whose entry was trimmed is not found; then
``--customer`` says whose it is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis

from config.settings import Settings
from sinks.redis import RedisLayout
from streams.feedback import feedback_message, send_feedback
from streams.health import feedback_time


class NotFound(LookupError):
    """The alert is not in Redis (any more)."""


async def acknowledge(
    settings: Settings,
    alert_id: str,
    actor: str,
    note: str | None = None,
    customer_id: str | None = None,
) -> dict[str, Any]:
    """Acknowledge one alert; returns the message sent."""
    client, layout = _client(settings), RedisLayout(settings.redis_prefix)
    try:
        if customer_id is None:
            customer_id = await alert_customer(client, layout, alert_id)
        ts = await feedback_time(client, layout)
    finally:
        await client.aclose()
    message = feedback_message(customer_id, "acknowledge", actor, ts, alert_id=alert_id, note=note)
    await send_feedback(settings, [message])
    return message


async def snooze(
    settings: Settings,
    customer_id: str,
    until: datetime,
    actor: str,
    reason_code: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Snooze a customer until ``until``; returns the message sent."""
    client, layout = _client(settings), RedisLayout(settings.redis_prefix)
    try:
        ts = await feedback_time(client, layout)
    finally:
        await client.aclose()
    message = feedback_message(
        customer_id, "snooze", actor, ts, until=until, reason_code=reason_code, note=note
    )
    await send_feedback(settings, [message])
    return message


async def alert_customer(client: aioredis.Redis, layout: RedisLayout, alert_id: str) -> str:
    """The customer of an alert, from its dedupe key and alert-stream entry."""
    marker = await client.get(layout.dedupe(alert_id))
    stream_id = _text(marker).partition(" ")[2] if marker else ""
    if not stream_id:
        raise NotFound(f"alert {alert_id} not found in Redis (expired?): give --customer")
    entries: list[tuple[Any, dict[Any, Any]]] = await client.xrange(  # type: ignore[assignment]
        layout.alerts, min=stream_id, max=stream_id
    )
    if not entries:
        raise NotFound(f"alert {alert_id} was trimmed from the alert stream: give --customer")
    fields = {_text(k): _text(v) for k, v in entries[0][1].items()}
    customer: str = orjson.loads(fields["alert"])["customer_id"]
    return customer


def _client(settings: Settings) -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.redis_url, **settings.redis_client_options())


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
