"""The pipeline's table writes: the local store, then one produce batch per changelog partition.

Every write goes this way: a batch's states, sweep agenda and clock, and dead-letter notes.

Faust writes a table key through ``Table.__setitem__``: the store, then ``send_changelog`` (a
future message, the producer buffer's queue and task, one aiokafka ``send`` per key). For a batch
that changes thousands of customers that per-key machinery costs more than the detectors. This
writer does what Faust's write does, in bulk: each key goes to the table's store (under the
``current_event`` Faust's stores read the partition from), and each partition's keys go to the
changelog topic in order as aiokafka batches (``create_batch``/``send_batch``), serialised as
the table's raw serialisers would. The producer is Faust's own, so Faust's commit, which flushes
the producer before committing offsets, still commits nothing whose state is not on the broker.
On delivery the store learns the persisted offset, as ``Table._on_changelog_sent`` tells it, so
RocksDB resumes recovery where it should.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Any

from faust.streams import _current_event
from faust.types import TP

from streams.applier import Write


class ChangelogWriter:
    def __init__(self, table: Any) -> None:
        self.table = table

    async def write(self, writes: Sequence[Write], delivered: bool = False) -> None:
        """Apply ``writes`` (values None delete) to the store and send them to the changelog;
        with ``delivered``, return only once the broker has them. Each write's ``anchor`` is
        the input message whose partition the key belongs to."""
        if not writes:
            return
        store = self.table.data
        by_partition: dict[int, list[Write]] = {}
        for write in writes:
            anchor = _Anchor(write.anchor)
            token = _current_event.set(weakref.ref(anchor))  # type: ignore[arg-type]
            try:
                if write.value is not None:
                    store[write.key] = write.value
                elif write.key in store:
                    del store[write.key]
            finally:
                _current_event.reset(token)
            by_partition.setdefault(write.anchor.partition, []).append(write)
        producer = self.table.app.producer._ensure_producer()
        topic = self.table.changelog_topic.get_topic_name()
        sent = []
        for partition, items in by_partition.items():
            sent += await self._send(producer, topic, partition, items)
        if delivered:
            await asyncio.gather(*sent)

    async def _send(
        self, producer: Any, topic: str, partition: int, items: list[Write]
    ) -> list[asyncio.Future[Any]]:
        tp = TP(topic, partition)
        store = self.table.data
        records = [(write.key, write.value) for write in items]
        sent = await produce_batches(producer, topic, partition, records)
        for delivered, count in sent:

            def persisted(future: asyncio.Future[Any], count: int = count) -> None:
                if not future.cancelled() and future.exception() is None:
                    store.set_persisted_offset(tp, future.result().offset + count - 1)

            delivered.add_done_callback(persisted)
        return [delivered for delivered, _ in sent]


async def produce_batches(
    producer: Any, topic: str, partition: int, records: Sequence[tuple[bytes | None, bytes | None]]
) -> list[tuple[asyncio.Future[Any], int]]:
    """Hand ``records`` (key, value) to ``producer`` (aiokafka's) as few batches for one
    partition, in order; returns each batch's delivery future and record count. Nothing is
    awaited but the accumulator's room: the producer's flush, which Faust's commit does first,
    waits for delivery."""
    sent: list[tuple[asyncio.Future[Any], int]] = []
    batch, count = producer.create_batch(), 0
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is None:
            sent.append(await _submit(producer, batch, topic, partition, count))
            batch, count = producer.create_batch(), 0
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"record for {(key or b'')[:64]!r} exceeds a batch of {topic}")
        count += 1
    if count:
        sent.append(await _submit(producer, batch, topic, partition, count))
    return sent


async def _submit(
    producer: Any, batch: Any, topic: str, partition: int, count: int
) -> tuple[asyncio.Future[Any], int]:
    batch.close()
    return await producer.send_batch(batch, topic, partition=partition), count


class _Anchor:
    """Stands for the event Faust's stores expect in ``current_event()``: only ``.message``
    (topic and partition) is read."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, message: Any) -> None:
        self.message = message
