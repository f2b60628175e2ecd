"""``ews redis rebuild``: Redis is a view, Kafka the record.

Everything the workers write to Redis (customer hash, history, watch-list, alert stream, dedupe
keys) is a function of the alerts they delivered, and every delivered alert is on
``ews.notifications`` with its Redis stream entry id in a header (``sinks.notifications``). The
rebuild reads the topic from the beginning, keeps the first message of each ``alert_id`` (the
topic may repeat one; see ``sinks.delivery``), orders them by stream id, which is the order Redis
first wrote them in, and writes them back with :meth:`RedisSink.restore`.

The workers' own state (the ``customers`` table) is not in Redis and needs no rebuild: Faust
restores it from its changelog topic. What the notifications topic no longer holds cannot come
back, so it should keep messages at least ``EWS_REDIS_CUSTOMER_TTL_S`` (README, "Runbook"). The
rebuild checks that against the changelog (compacted: every live customer's latest state): a
customer whose state says an alert was notified, but who has no alert on the topic, is counted
in :attr:`RebuildReport.missing_customers` and logged.

A message without the header (written before it existed) gets an id from its ``emitted_at``
time, after every id before it.

The audit trail (answers from ``ews.feedback`` in the customers' histories) comes back from that
topic: every message the worker would accept, in offset order, appended after the customer's
alerts (the original interleaving of answers and alerts in one history is not recorded
anywhere), with TTLs counted from now, and not published to live viewers.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from config.settings import Settings
from detectors.alert import Alert, Level
from detectors.events import Feedback
from detectors.state import CustomerState
from sinks.base import Outgoing
from sinks.notifications import STREAM_ID_HEADER
from sinks.redis import redis_sink
from streams.applier import is_customer_key
from streams.records import DecodeError, decode, decode_feedback
from streams.topics import topic_partitions

log = structlog.get_logger(__name__)


class RebuildRefused(RuntimeError):
    """Workers of the group are running: they would write to Redis during the rebuild."""


@dataclass(frozen=True, slots=True)
class RebuildReport:
    messages: int  # read from the notifications topic
    distinct_alerts: int
    written: int  # new in Redis (the rest were already in the stream)
    feedback_written: int  # audit entries new in Redis
    without_stream_id: int
    missing_customers: int  # notified per the changelog, absent from the notifications topic


async def rebuild(settings: Settings, force: bool = False) -> RebuildReport:
    """Restore the Redis view from ``settings.topics.notifications``."""
    if not force:
        members = await group_members(settings)
        if members:
            raise RebuildRefused(
                f"{members} worker(s) of group {settings.app_id} are running; stop them first "
                "(or --force if they write to another Redis)"
            )
    messages = await read_all(settings, settings.topics.notifications)
    alerts = ordered_alerts(messages)
    answers = valid_feedback(await read_all(settings, settings.topics.feedback), settings)
    sink = redis_sink(settings)
    try:
        await sink.start()
        written = await sink.restore(alerts, now_ms=int(time.time() * 1000))
        feedback_written = await sink.write_feedback(answers, publish=False)
    finally:
        await sink.close()
    notified = await notified_customers(settings)
    missing = sorted(notified - {out.alert.customer_id for out in alerts})
    report = RebuildReport(
        messages=len(messages),
        distinct_alerts=len(alerts),
        written=written,
        feedback_written=feedback_written,
        without_stream_id=sum(1 for _, headers, _ in messages if STREAM_ID_HEADER not in headers),
        missing_customers=len(missing),
    )
    if missing:
        log.warning(
            "alerts_missing_from_topic",
            customers=len(missing),
            examples=missing[:10],
            hint="the notifications topic dropped them (retention): their Redis view stays empty",
        )
    log.info("redis_rebuilt", **asdict(report))
    return report


async def notified_customers(settings: Settings) -> set[str]:
    """Customers whose latest state in the ``customers`` changelog was notified above none."""
    latest: dict[bytes, bytes | None] = {}
    for key, _, value in await read_all(settings, f"{settings.app_id}-customers-changelog"):
        if key is not None and is_customer_key(key):
            latest[key] = value
    return {
        key.decode()
        for key, value in latest.items()
        if value is not None and CustomerState.decode(value).alert.notified > Level.NONE
    }


Message = tuple[bytes | None, dict[str, bytes], bytes | None]  # (key, headers, value)


def valid_feedback(messages: list[Message], settings: Settings) -> list[Feedback]:
    """The answers the worker accepted (the rest went to the dead-letter topic)."""
    answers = []
    for key, _, value in messages:
        try:
            event = decode(decode_feedback, value, key, settings.max_message_bytes)
        except DecodeError:
            continue
        assert isinstance(event, Feedback)
        answers.append(event)
    return answers


_NO_SEQUENCE = 2**63


def ordered_alerts(messages: list[Message]) -> list[Outgoing]:
    """One :class:`Outgoing` per ``alert_id``, with its stream id, in stream-id order."""
    seen: set[str] = set()
    found: list[tuple[tuple[int, int], Outgoing]] = []
    for _, headers, value in messages:
        if value is None:
            continue
        data = orjson.loads(value)
        if data["alert_id"] in seen:
            continue
        seen.add(data["alert_id"])
        alert = Alert.from_dict(data)
        raw_id = headers.get(STREAM_ID_HEADER)
        if raw_id is not None:
            key = _parse_id(raw_id.decode())
        else:
            emitted = datetime.fromisoformat(data["emitted_at"])
            key = (int(emitted.timestamp() * 1000), _NO_SEQUENCE)  # after that ms's ids
        found.append((key, Outgoing(alert, value)))
    found.sort(key=lambda item: item[0])
    out: list[Outgoing] = []
    last = (-1, -1)
    for (ms, seq), item in found:
        if seq == _NO_SEQUENCE:
            seq = last[1] + 1 if ms == last[0] else 0
        if (ms, seq) <= last:  # only for ids made up from emitted_at
            ms, seq = last[0], last[1] + 1
        last = (ms, seq)
        out.append(Outgoing(item.alert, item.payload, f"{ms}-{seq}"))
    return out


async def read_all(settings: Settings, topic: str) -> list[Message]:
    """Every message now on ``topic`` (all partitions, by partition then offset; none if the
    topic does not exist)."""
    tps = await topic_partitions(settings, topic)
    if not tps:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[int, int, Message]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for r in records:
                    if r.offset < ends[TopicPartition(r.topic, r.partition)]:
                        message = (r.key, dict(r.headers), r.value)
                        out.append((r.partition, r.offset, message))
        return [message for _, _, message in sorted(out, key=lambda item: item[:2])]
    finally:
        await consumer.stop()


async def group_members(settings: Settings) -> int:
    """Members of the worker group now (0 when it is empty or unknown)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_client_options()
    )
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([settings.app_id])
    finally:
        await admin.close()
    return sum(len(group[5]) for response in responses for group in response.groups)


def _parse_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)
