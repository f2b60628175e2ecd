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
import bisect
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import orjson
import structlog

from detectors.alert import Alert
from detectors.events import Feedback
from sinks.base import Outgoing, SinkUnavailable
from sinks.notifications import NotificationSink
from sinks.redis import RedisSink

log = structlog.get_logger(__name__)

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LatencyHistogram:
    """Seconds per delivered batch, in fixed buckets (Prometheus ``le`` bounds, not cumulative
    here; the last slot counts everything above the largest bound)."""

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum_s = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum_s += seconds


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
        self.last_error = ""
        self.delivered = 0
        self.latency = LatencyHistogram()  # first try to both sinks' ack, retries included

    async def start(self) -> None:
        await self.redis.start()
        await self.notifications.start()

    async def close(self) -> None:
        await self.notifications.close()
        await self.redis.close()

    async def ping(self, timeout_s: float = 2.0) -> list[str]:
        """Why the sinks cannot take a batch now (empty: both answer). For readiness."""
        problems = [] if self.healthy else [f"sink writes failing: {self.last_error}"]
        for name, sink in (("redis", self.redis), ("kafka", self.notifications)):
            try:
                await asyncio.wait_for(sink.ping(), timeout_s)
            except SinkUnavailable as exc:
                problems.append(f"{name}: {exc}")
            except TimeoutError:
                problems.append(f"{name}: no answer within {timeout_s:g}s")
        return problems

    async def deliver(self, alerts: Sequence[Alert], feedback: Sequence[Feedback] = ()) -> None:
        """Write ``alerts`` to both sinks, and the answers in ``feedback`` to the Redis audit
        trail; retries with backoff until both acknowledge."""
        if not alerts and not feedback:
            return
        emitted_at = self.clock()
        batch = [Outgoing(a, orjson.dumps(a.to_dict(emitted_at))) for a in alerts]
        started = time.perf_counter()
        delay = 0.1
        while True:
            try:
                await self.redis.write_feedback(feedback)
                pending = await self.redis.write(batch)
                await self.notifications.write_batch(pending)
                await self.redis.mark_published(pending)
            except SinkUnavailable as exc:
                self.healthy = False
                self.last_error = str(exc)
                log.warning("sink_unavailable", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            if not self.healthy:
                log.info("sinks_recovered")
            self.healthy = True
            self.delivered += len(batch)
            self.latency.observe(time.perf_counter() - started)
            return
