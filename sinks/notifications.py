"""The ``ews.notifications`` topic: one message per alert, keyed by ``customer_id``.

``write_batch`` returns only when the broker acknowledged every message (``acks=all``), so
offsets committed afterwards never run ahead of a notification. Each message carries the alert's
Redis stream entry id in a header, so a lost Redis can be rebuilt with the same ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from sinks.base import Outgoing, Sink, SinkUnavailable


class NotificationSink(Sink):
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        idempotent: bool = True,
        client_options: dict[str, Any] | None = None,
        timeout_s: float = 15.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.timeout_s = timeout_s
        self.options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "acks": "all",
            "enable_idempotence": idempotent,
            "linger_ms": 2,
            "request_timeout_ms": int(timeout_s * 1000),
            **(client_options or {}),
        }
        self._producer: AIOKafkaProducer | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise SinkUnavailable("notification sink used before start()")
        return self._producer

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(**self.options)  # needs the running loop
        try:
            await asyncio.wait_for(self.producer.start(), self.timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            await self.producer.stop()
            raise SinkUnavailable(f"cannot reach Kafka at {self.bootstrap}: {exc!r}") from exc

    async def write_batch(self, batch: Sequence[Outgoing]) -> None:
        try:
            pending = [
                await self.producer.send(
                    self.topic,
                    out.payload,
                    key=out.alert.customer_id.encode(),
                    headers=_headers(out),
                )
                for out in batch
            ]
            await asyncio.wait_for(asyncio.gather(*pending), self.timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise SinkUnavailable(f"publishing to {self.topic} failed: {exc!r}") from exc

    async def ping(self) -> None:
        """A metadata round trip to the cluster on the producer's own connections."""
        try:
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), self.timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise SinkUnavailable(f"cannot reach Kafka at {self.bootstrap}: {exc!r}") from exc

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


STREAM_ID_HEADER = "ews-stream-id"
"""Header naming the alert's entry id in the Redis alert stream (``ews redis rebuild`` uses it)."""


def _headers(out: Outgoing) -> list[tuple[str, bytes]] | None:
    return None if out.stream_id is None else [(STREAM_ID_HEADER, out.stream_id.encode())]
