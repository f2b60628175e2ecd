"""Helpers shared by the integration and end-to-end tests: produce, run workers, read back."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from config.rules import DEFAULT_RULES, Rules, load_rules
from config.settings import Settings, load_settings
from detectors.engine import RiskDetector
from sinks.redis import RedisLayout
from streams.demo import processed
from streams.localstack import java_and_maven_available
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


def _committed_or_zero(settings: Settings) -> int:
    """Committed events, or 0 while the broker does not answer (a test may have stopped it)."""
    try:
        return asyncio.run(committed_total(settings))
    except Exception:  # aiokafka raises assorted errors (even AssertionError) while it reconnects
        return 0


def wait_processed(
    settings: Settings, total: int, timeout_s: float = 90.0, logs: Sequence[Path] = ()
) -> None:
    """Wait until ``total`` input events are committed; a timeout says, per partition, what is
    committed of what the broker holds, and what the workers' ``logs`` tell about it (CI keeps
    only the test's output)."""
    try:
        wait_until(
            lambda: _committed_or_zero(settings) >= total,
            timeout_s,
            f"{total} events committed by {settings.app_id}",
        )
    except AssertionError as exc:
        detail = asyncio.run(offsets_report(settings))
        digests = "".join(f"\n--- {path}:\n{log_digest(path)}" for path in logs)
        raise AssertionError(f"{exc}; committed/end per partition: {detail}{digests}") from None


_TELLING = re.compile(
    r'"level":"(warning|error|critical)"|\[(WARNING|ERROR|CRITICAL)\]|Traceback|'
    r"partitions_assigned|revoked|rebalance|let_go|lane_dropped|Seek|Ready|Restart"
)


def log_digest(path: Path, keep: int = 80) -> str:
    """A worker log's telling lines (warnings, errors, rebalances, seeks, drops) and its last
    progress report, at most ``keep`` lines, the latest kept."""
    if not path.exists():
        return "(no log)"
    lines = path.read_text(errors="replace").splitlines()
    telling = [line[:400] for line in lines if _TELLING.search(line)]
    progress = [line[:400] for line in lines if '"pipeline_progress"' in line][-1:]
    return "\n".join((telling[-keep:] + progress) or ["(nothing telling)"])


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
        wait_processed(settings, total, logs=[log_path])
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


# --------------------------------------------------------------------------------------------
# Reliability scenarios (tests/reliability): one checker of the users' promise, and the waits
# that put a fault mid-stream.
# --------------------------------------------------------------------------------------------


def require_kafka() -> None:
    """Skip where Java or Maven is missing; fail instead under ``EWS_REQUIRE_KAFKA=1`` (CI)."""
    if java_and_maven_available():
        return
    if os.environ.get("EWS_REQUIRE_KAFKA") == "1":
        pytest.fail("EWS_REQUIRE_KAFKA=1 but Java or Maven is missing: cannot start Apache Kafka")
    pytest.skip("Java or Maven not found: Apache Kafka tests need both")


def scenario_settings(kafka_bootstrap: str, redis_url: str, **extra: Any) -> Settings:
    """Own topics, consumer group and Redis prefix on shared services; learning off (live equals
    replay only with the model not learning, see tests/integration/test_pipeline.py); the
    shortest session Kafka allows, so a killed worker's partitions move within seconds; a
    customer history long enough to hold every alert, so duplicates there cannot hide."""
    tag = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "kafka_bootstrap": kafka_bootstrap,
        "redis_url": redis_url,
        "topic_prefix": f"r{tag}.",
        "app_id": f"ews-r{tag}",
        "redis_prefix": f"r{tag}:",
        "partitions": 3,
        "model_learning": False,
        "kafka_session_timeout_s": 6.0,
        "redis_history_len": 10_000,
        "sink_retry_max_s": 1.0,
        **extra,
    }
    return load_settings({}, **values)


def scenario_worker(settings: Settings, folder: Path, name: str) -> WorkerProcess:
    """A worker (not started) with its own Faust data directory and a log named after the
    scenario's consumer group, so reruns into the same folder do not mix their logs."""
    own = dataclasses.replace(settings, data_dir=str(folder / f"{settings.app_id}-{name}"))
    return WorkerProcess(own, folder / f"{settings.app_id}-{name}.log")


async def _first_changelog_write(settings: Settings, timeout_s: float) -> None:
    """Return as soon as the worker group's customer-table changelog holds a record."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    topic = f"{settings.app_id}-customers-changelog"  # as many partitions as the inputs
    tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if topic in await consumer.topics() and sum((await consumer.end_offsets(tps)).values()):
                return
            await asyncio.sleep(0.02)
    finally:
        await consumer.stop()
    raise AssertionError(f"the worker applied nothing in {timeout_s:.0f}s")


def wait_mid_stream(settings: Settings, total: int, timeout_s: float = 90.0) -> int:
    """Wait until the worker has applied its first batch (its state is on the changelog): it is
    then part-way through the input. Return the events committed at that moment, which must be
    short of ``total`` (else a fault injected now would not be mid-stream). Commits are no
    signal: they wait for the head of each partition, which the event-time merge may hold, and
    a busy worker commits seldom."""
    asyncio.run(_first_changelog_write(settings, timeout_s))
    done = asyncio.run(committed_total(settings))
    assert done < total, f"all {total} events were committed before the fault"
    return done


def unprocessed_partitions(settings: Settings) -> dict[str, tuple[int | None, int]]:
    """Input partitions whose committed offset is short of their end offset."""
    report = asyncio.run(offsets_report(settings))
    return {tp: (done, end) for tp, (done, end) in report.items() if (done or 0) < end}


def redis_histories(settings: Settings, customer_ids: Iterable[str]) -> dict[str, list[str]]:
    """alert_ids in each customer's Redis history, newest first (feedback entries aside)."""
    client = redis.Redis.from_url(settings.redis_url)
    layout = RedisLayout(settings.redis_prefix)
    try:
        return {
            c: [e["alert_id"] for e in redis_history(client, layout, c) if e["kind"] != "feedback"]
            for c in customer_ids
        }
    finally:
        client.close()


def redis_history(client: redis.Redis, layout: RedisLayout, customer_id: str) -> list[Any]:
    """A customer's Redis history entries (alerts and feedback), newest first."""
    return [orjson.loads(v) for v in client.lrange(layout.history(customer_id), 0, -1)]


@dataclass(frozen=True, slots=True)
class Delivered:
    """What one scenario run left behind, for its report."""

    events: int
    alerts: int
    notifications: int
    dead_letters: int


def assert_delivered_as_replayed(
    settings: Settings, want: ReplayResult, injected: list[bytes]
) -> Delivered:
    """The users' promise after whatever failed: every input event processed (committed) at
    least once; the distinct alert_ids in Redis, on the notifications topic and in the offline
    replay are one set; no alert_id twice in the Redis alert stream or any customer's history;
    the dead letters are exactly the malformed input messages, each once."""
    assert not unprocessed_partitions(settings), "input left uncommitted"
    expected_ids = {a.alert_id for a in want.alerts}
    assert expected_ids, "the seeded input must raise alerts for the scenario to mean anything"

    stream = [a["alert_id"] for a in redis_alerts(settings)]
    duplicated = sorted(i for i, n in Counter(stream).items() if n > 1)
    assert not duplicated, f"alert_ids twice in the Redis alert stream: {duplicated[:5]}"
    missing, extra = expected_ids - set(stream), set(stream) - expected_ids
    assert not missing and not extra, (
        f"Redis alert stream vs replay: {len(missing)} missing {sorted(missing)[:5]}, "
        f"{len(extra)} unexpected {sorted(extra)[:5]}"
    )
    topic = [a["alert_id"] for a in notification_alerts(settings)]
    assert set(topic) == expected_ids, (
        f"notifications vs replay: missing {sorted(expected_ids - set(topic))[:5]}, "
        f"unexpected {sorted(set(topic) - expected_ids)[:5]}"
    )
    per_customer: dict[str, set[str]] = {}
    for alert in want.alerts:
        per_customer.setdefault(alert.customer_id, set()).add(alert.alert_id)
    for customer_id, history in redis_histories(settings, per_customer).items():
        assert len(history) == len(set(history)), f"{customer_id}: an alert twice in its history"
        assert set(history) == per_customer[customer_id], f"{customer_id}: history differs"

    letters = dead_letters(settings)
    sources = Counter((d["topic"], d["partition"], d["offset"]) for d in letters)
    twice = sorted(s for s, n in sources.items() if n > 1)
    assert not twice, f"messages dead-lettered more than once: {twice[:5]}"
    got = sorted((original_bytes(d), d["error_code"]) for d in letters)
    assert got == sorted((m.value, e.code.value) for m, e in want.dead_letters)
    assert [value for value, _ in got] == sorted(injected), "dead letters != injected messages"
    return Delivered(want.messages, len(stream), len(topic), len(letters))


def http_get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET (an error status too); 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def isolated_settings(kafka_bootstrap: str, redis_url: str, **extra: Any) -> Settings:
    """Own topics, consumer group and Redis prefix on shared services, three partitions; learning
    off unless asked: live equals replay only with the model pinned or not learning (a restarted
    worker re-emits the labels of its uncommitted events, and the trainer publishes whenever it
    has learned enough; see DESIGN.md, "Time")."""
    tag = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "kafka_bootstrap": kafka_bootstrap,
        "redis_url": redis_url,
        "topic_prefix": f"t{tag}.",
        "app_id": f"ews-t{tag}",
        "redis_prefix": f"t{tag}:",
        "partitions": 3,
        "model_learning": False,
    }
    return load_settings({}, **{**values, **extra})


def rules_without_warmup() -> Rules:
    """The packaged rules with label snapshots from a customer's first scoring, for tests whose
    streams are shorter than the warm-up plus the horizon."""
    rules = load_rules()
    return dataclasses.replace(rules, model=dataclasses.replace(rules.model, warmup_days=0))


def rules_file_without_warmup(directory: Path) -> str:
    """The packaged rules file with ``warmup_days = 0`` (see :func:`rules_without_warmup`),
    written into ``directory``, for a worker to load."""
    text = DEFAULT_RULES.read_text()
    if "warmup_days = 90" not in text:
        raise AssertionError("config/rules.toml no longer has warmup_days = 90")
    path = directory / "rules-without-warmup.toml"
    path.write_text(text.replace("warmup_days = 90", "warmup_days = 0"))
    return str(path)
