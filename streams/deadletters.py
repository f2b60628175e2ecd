"""``ews deadletter replay``: send dead-lettered messages back to their input topic after a fix.

A dead letter holds the original key and bytes and the topic they came from. After the cause is
fixed (a producer corrected, a limit raised, a decoder extended), replaying puts each original
back on its topic, unchanged but for a header naming where it was first read
(``ews-replayed-from: topic:partition:offset``); the workers apply it as a late event with its
own timestamp, or dead-letter it again if it still fails.

Each dead letter is replayed once: progress is the committed offset of the consumer group
``{app id}-deadletter-replay`` on the dead-letter topic, committed only after the producer has
flushed, so a run replays what arrived since the last one (a run that dies between the two is
replayed whole by the next). ``--dry-run`` counts without sending or committing.

A dead letter keeps at most ``EWS_MAX_MESSAGE_BYTES`` of its message (``payload_truncated``):
such a one is replayed from the input topic itself, at the partition and offset it names, while
the topic still holds it (else it is counted as ``gone`` and left out).
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import asdict, dataclass, field

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from config.settings import Settings
from streams.topics import topic_partitions

log = structlog.get_logger(__name__)

REPLAYED_FROM_HEADER = "ews-replayed-from"


@dataclass(frozen=True, slots=True)
class ReplayReport:
    read: int  # dead letters since the last replay
    replayed: int  # sent back to an input topic (on a dry run: would be)
    by_error: dict[str, int] = field(default_factory=dict)
    not_input: int = 0  # naming a topic that is not an input topic: left alone
    gone: int = 0  # truncated, and the input topic no longer holds the original


async def replay_dead_letters(settings: Settings, dry_run: bool = False) -> ReplayReport:
    tps = await topic_partitions(settings, settings.topics.deadletter)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.app_id}-deadletter-replay",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps) if tps else {}
        letters = await _read_to(consumer, ends)
        inputs = set(settings.topics.inputs)
        wanted = [d for d in letters if d["topic"] in inputs]
        originals = await _originals(settings, [d for d in wanted if d.get("payload_truncated")])
        gone = [d for d in wanted if d.get("payload_truncated") and _origin(d) not in originals]
        wanted = [d for d in wanted if d not in gone]
        if not dry_run:
            await _send(settings, wanted, originals)
            if ends:
                await consumer.commit(ends)  # only once every replayed message is on the broker
    finally:
        await consumer.stop()
    report = ReplayReport(
        read=len(letters),
        replayed=len(wanted),
        by_error=dict(Counter(str(d["error_code"]) for d in letters)),
        not_input=len(letters) - len(wanted) - len(gone),
        gone=len(gone),
    )
    log.info("dead_letters_replayed", dry_run=dry_run, **asdict(report))
    return report


async def _read_to(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]
) -> list[dict[str, object]]:
    """The dead letters from the group's committed offsets (or the start) up to ``ends``."""
    out: list[tuple[int, int, dict[str, object]]] = []
    while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            out += [
                (r.partition, r.offset, orjson.loads(r.value))
                for r in records
                if r.value is not None and r.offset < ends[TopicPartition(r.topic, r.partition)]
            ]
    return [letter for _, _, letter in sorted(out, key=lambda item: item[:2])]


def _origin(letter: dict[str, object]) -> tuple[str, int, int]:
    return str(letter["topic"]), int(str(letter["partition"])), int(str(letter["offset"]))


async def _originals(
    settings: Settings, letters: list[dict[str, object]]
) -> dict[tuple[str, int, int], tuple[bytes, bytes | None]]:
    """The whole messages (value, key) of truncated dead letters, from their input topics."""
    if not letters:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    found: dict[tuple[str, int, int], tuple[bytes, bytes | None]] = {}
    try:
        for topic, partition, offset in sorted({_origin(d) for d in letters}):
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            start = (await consumer.beginning_offsets([tp]))[tp]
            if offset < start:
                continue  # past the topic's retention
            consumer.seek(tp, offset)
            record = await consumer.getone()
            if record.offset == offset and record.value is not None:
                found[(topic, partition, offset)] = (record.value, record.key)
    finally:
        await consumer.stop()
    return found


async def _send(
    settings: Settings,
    letters: list[dict[str, object]],
    originals: dict[tuple[str, int, int], tuple[bytes, bytes | None]],
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", **settings.kafka_client_options()
    )
    await producer.start()
    try:
        for d in letters:
            origin = f"{d['topic']}:{d['partition']}:{d['offset']}".encode()
            key = base64.b64decode(str(d["key_b64"])) if d.get("key_b64") is not None else None
            payload = base64.b64decode(str(d["payload_b64"]))
            if _origin(d) in originals:
                payload, key = originals[_origin(d)]
            await producer.send(
                str(d["topic"]), payload, key=key, headers=[(REPLAYED_FROM_HEADER, origin)]
            )
        await producer.flush()
    finally:
        await producer.stop()
