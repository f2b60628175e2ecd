"""Faust's seek back to the committed offsets, as the worker patches it, on real Apache Kafka."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from streams import faust_fixes
from streams.localstack import ApacheKafka

pytestmark = pytest.mark.kafka

PER_PARTITION = 5


class _ConsumerThread(SimpleNamespace):
    """What ``AIOKafkaConsumerThread.seek_to_committed`` uses of the thread, around a real
    aiokafka consumer (the call runs in this test's loop instead of the consumer thread)."""

    def _ensure_consumer(self) -> AIOKafkaConsumer:
        consumer: AIOKafkaConsumer = self.consumer
        return consumer

    async def call_thread(self, fun: Any, *args: Any, **kwargs: Any) -> Any:
        return await fun(*args, **kwargs)


async def test_fetched_then_dropped_messages_are_fetched_again_after_the_seek(
    kafka: ApacheKafka,
) -> None:
    """A worker's consumer fetched messages and dropped them (as Faust does while a rebalance
    or its recovery pauses partitions). Faust's seek to the committed offsets must bring every
    input partition back to what was committed: also one with nothing committed (to its start)
    and one committed at 0, which aiokafka's own seek leaves where the dropped fetch put them.
    A changelog partition (not acked, positioned by Faust's recovery) is left alone."""
    faust_fixes.install()
    tag = uuid.uuid4().hex[:8]
    inputs, changelog = f"s{tag}.in", f"s{tag}-customers-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(inputs, 3, 1), NewTopic(changelog, 1, 1)], validate_only=False
        )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        for partition in range(3):
            for i in range(PER_PARTITION):
                await producer.send_and_wait(inputs, b"x%d" % i, partition=partition)
        for i in range(PER_PARTITION):
            await producer.send_and_wait(changelog, b"c%d" % i, partition=0)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        group_id=f"g{tag}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.subscribe([inputs, changelog])
        tps = [TopicPartition(inputs, p) for p in range(3)] + [TopicPartition(changelog, 0)]
        fetched = 0
        async with asyncio.timeout(30):
            while fetched < 4 * PER_PARTITION:  # fetched, then dropped
                batches = await consumer.getmany(timeout_ms=500)
                fetched += sum(len(records) for records in batches.values())
        await consumer.commit({tps[1]: OffsetAndMetadata(0, ""), tps[2]: OffsetAndMetadata(3, "")})
        assert [await consumer.position(tp) for tp in tps] == [PER_PARTITION] * 4

        thread = _ConsumerThread(
            consumer=consumer,
            app=SimpleNamespace(
                topics=SimpleNamespace(acks_enabled_for=lambda topic: topic == inputs),
                tables=SimpleNamespace(changelog_topics={changelog}),
                conf=SimpleNamespace(consumer_auto_offset_reset="earliest"),
            ),
        )
        committed = await AIOKafkaConsumerThread.seek_to_committed(thread)  # type: ignore[arg-type]

        assert committed == {tps[0]: None, tps[1]: 0, tps[2]: 3, tps[3]: None}
        positions = [await consumer.position(tp) for tp in tps]
        assert positions == [0, 0, 3, PER_PARTITION], (
            "nothing committed -> start, committed 0 -> 0, committed 3 -> 3, changelog untouched"
        )
    finally:
        await consumer.stop()
