"""Create the topics the system needs, co-partitioned, and check existing ones agree."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from config.settings import Settings


class TopicError(RuntimeError):
    """Topics could not be created, or exist with the wrong partition count."""


COMPACTED = {"cleanup.policy": "compact"}


async def ensure_topics(
    settings: Settings, timeout_s: float = 30.0, changelogs: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Create missing input/output topics, and the ``changelogs`` given (name: partitions,
    compacted); return each topic's partition count.

    All input topics must have ``settings.partitions`` partitions, so one customer's events land
    in the same partition number everywhere; an existing topic with another count is an error.

    A worker passes its tables' changelogs: Faust would create them itself as it starts, but
    workers starting together then race, and a group leader that assigns before the new
    topic's metadata reached it leaves the topic out (faust's assignor: "Ignoring missing
    topic"), and its global table is never recovered: the worker never joins.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        **settings.kafka_client_options(),
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        await admin.close()
        raise TopicError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc!r}") from exc
    partitions = {
        **dict.fromkeys(settings.topics.inputs, settings.partitions),
        settings.topics.notifications: settings.partitions,
        settings.topics.deadletter: settings.partitions,
        settings.topics.training: 1,  # one global model: one trainer consumes it
        **(changelogs or {}),
    }
    names = list(partitions)
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        n,
                        partitions[n],
                        settings.replication_factor,
                        topic_configs=COMPACTED if n in (changelogs or {}) else {},
                    )
                    for n in missing
                ]
            )
        counts = await _partition_counts(admin, names, timeout_s)
    finally:
        await admin.close()
    for name in settings.topics.inputs:
        if counts.get(name) != settings.partitions:
            raise TopicError(
                f"topic {name} has {counts.get(name)} partitions, expected {settings.partitions}: "
                "input topics must be co-partitioned"
            )
    return counts


async def _partition_counts(
    admin: AIOKafkaAdminClient, names: list[str], timeout_s: float
) -> dict[str, int]:
    """Partition counts per topic; waits (bounded) for just-created topics to show partitions,
    since brokers publish new topics' metadata a moment after they confirm the creation."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        counts = {d["topic"]: len(d["partitions"]) for d in described}
        if all(counts.get(n) for n in names) or asyncio.get_running_loop().time() > deadline:
            return counts
        await asyncio.sleep(0.2)


async def topic_partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    """The partitions ``topic`` has now (none if it does not exist)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_client_options()
    )
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(TopicPartition(topic, p["partition"]) for d in described for p in d["partitions"])
