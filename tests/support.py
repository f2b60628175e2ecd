"""Helpers shared by the integration and end-to-end tests: produce, run workers, read back."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from config.rules import load_rules
from config.settings import Settings
from detectors.engine import RiskDetector
from sinks.redis import RedisLayout
from streams.demo import processed
from streams.records import decoders
from streams.replay import Recorded, ReplayResult, replay
from streams.simulator import GeneratedStream, as_recorded
from streams.topics import ensure_topics


def recorded(stream: GeneratedStream, settings: Settings) -> list[Recorded]:
    return as_recorded(stream.messages, settings.topics)


def expected(messages: list[Recorded], settings: Settings) -> ReplayResult:
    """What the live system must emit: the offline replay of the same input."""
    detector = RiskDetector(load_rules(settings.rules_file), settings.model_version)
    return replay(messages, decoders(settings.topics), detector, settings.partitions)


async def produce(settings: Settings, messages: Iterable[Recorded]) -> int:
    """Create the topics if needed (as ``ews topics create`` does), then produce in order."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await producer.start()
    count = 0
    try:
        for m in messages:
            await producer.send(m.topic, m.value, key=m.key)
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


async def committed_total(settings: Settings) -> int:
    """Events the worker group has committed on the input topics (the demo's own measure)."""
    return await processed(settings)


async def read_topic(
    settings: Settings, topic: str, partitions: int | None = None
) -> list[tuple[bytes | None, bytes]]:
    """Every message currently on ``topic``, by partition, then offset."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        count = settings.partitions if partitions is None else partitions
        tps = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[int, int, bytes | None, bytes]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=1000)
            for batch in batches.values():
                out.extend((r.partition, r.offset, r.key, r.value) for r in batch)
        return [(key, value) for _, _, key, value in sorted(out)]
    finally:
        await consumer.stop()


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def wait_processed(settings: Settings, total: int, timeout_s: float = 90.0) -> None:
    try:
        wait_until(
            lambda: asyncio.run(committed_total(settings)) >= total,
            timeout_s,
            f"{total} events committed by {settings.app_id}",
        )
    except AssertionError as exc:
        detail = asyncio.run(offsets_report(settings))
        raise AssertionError(f"{exc}; committed/end per partition: {detail}") from None


async def offsets_report(settings: Settings) -> dict[str, tuple[int | None, int]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=settings.app_id
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p) for t in settings.topics.inputs for p in range(settings.partitions)
        ]
        ends = await consumer.end_offsets(tps)
        return {
            f"{tp.topic}:{tp.partition}": (await consumer.committed(tp), ends[tp]) for tp in tps
        }
    finally:
        await consumer.stop()


def process_with_worker(settings: Settings, messages: list[Recorded], log_path: Path) -> int:
    """Produce ``messages``, then run one worker until all are committed; return the count.

    Input goes in before the worker starts, so the worker's event-time merge is exact and its
    alerts must equal the offline replay's."""
    total = asyncio.run(produce(settings, messages))
    worker = WorkerProcess(settings, log_path).start()
    try:
        wait_processed(settings, total)
    finally:
        worker.stop()
    return total


class WorkerProcess:
    """``ews worker`` as a child process with the given settings; stopped by its own pid."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {**os.environ, **self.settings.env_vars, "EWS_LOG_FORMAT": "json"}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to commit or flush anything."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def redis_alerts(settings: Settings) -> list[dict[str, Any]]:
    """The alert stream in Redis, oldest first."""
    client = redis.Redis.from_url(settings.redis_url)
    entries = client.xrange(RedisLayout(settings.redis_prefix).alerts)
    client.close()
    return [orjson.loads(fields[b"alert"]) for _, fields in entries]


def notification_alerts(settings: Settings) -> list[dict[str, Any]]:
    messages = asyncio.run(read_topic(settings, settings.topics.notifications))
    return [orjson.loads(value) for _, value in messages]


def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    messages = asyncio.run(read_topic(settings, settings.topics.deadletter))
    return [orjson.loads(value) for _, value in messages]


def original_bytes(dead_letter: dict[str, Any]) -> bytes:
    return base64.b64decode(dead_letter["payload_b64"])


def events_applied(settings: Settings) -> dict[str, int]:
    """Per customer, the events applied so far, from the last state on the table's changelog
    (what a restarted worker recovers)."""
    records = asyncio.run(read_topic(settings, f"{settings.app_id}-customers-changelog"))
    latest = {key: value for key, value in records if key and not key.startswith(b"\x00")}
    detector = RiskDetector(load_rules(settings.rules_file), settings.model_version)
    return {
        key.decode(): detector.decode_state(value).events
        for key, value in latest.items()
        if value is not None
    }
