"""Delivery of a batch of alerts to Redis and the notifications topic, retried until both ack.

Order per batch: Redis first (atomic, deduplicated per ``alert_id``; it reports which alerts are
not yet confirmed published), then the notifications topic for exactly those, then Redis marks
them published. A retry after any failure therefore republishes only what was never confirmed;
the one window for a duplicate on the topic is a crash between the broker's ack and the mark,
and consumers dedupe on ``alert_id`` for that. The caller commits offsets only after
:meth:`Delivery.deliver` returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

import orjson
import structlog

from detectors.alert import Alert
from sinks.base import Outgoing, SinkUnavailable
from sinks.notifications import NotificationSink
from sinks.redis import RedisSink

log = structlog.get_logger(__name__)


class Delivery:
    def __init__(
        self,
        redis: RedisSink,
        notifications: NotificationSink,
        clock: Callable[[], datetime],
        retry_max_s: float = 10.0,
    ) -> None:
        self.redis = redis
        self.notifications = notifications
        self.clock = clock
        self.retry_max_s = retry_max_s
        self.healthy = True
        self.delivered = 0

    async def start(self) -> None:
        await self.redis.start()
        await self.notifications.start()

    async def close(self) -> None:
        await self.notifications.close()
        await self.redis.close()

    async def deliver(self, alerts: Sequence[Alert]) -> None:
        """Write ``alerts`` to both sinks; retries with backoff until both acknowledge."""
        if not alerts:
            return
        emitted_at = self.clock()
        batch = [Outgoing(a, orjson.dumps(a.to_dict(emitted_at))) for a in alerts]
        delay = 0.1
        while True:
            try:
                pending = await self.redis.write(batch)
                await self.notifications.write_batch(pending)
                await self.redis.mark_published(pending)
            except SinkUnavailable as exc:
                self.healthy = False
                log.warning("sink_unavailable", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            if not self.healthy:
                log.info("sinks_recovered")
            self.healthy = True
            self.delivered += len(batch)
            return
