"""The whole path on a real Apache Kafka broker and a real redis-server."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from config.settings import Settings, load_settings
from streams.localstack import ApacheKafka, RedisServer
from streams.simulator import generate
from tests.support import (
    WorkerProcess,
    committed_total,
    dead_letters,
    events_applied,
    expected,
    isolated_settings,
    notification_alerts,
    original_bytes,
    process_with_worker,
    produce,
    read_topic,
    recorded,
    redis_alerts,
    rules_file_without_warmup,
    wait_processed,
    wait_until,
)

pytestmark = pytest.mark.kafka

STREAM = generate(customers=30, days=150, seed=11, malformed=6)
LONG_STREAM = generate(customers=60, days=180, seed=12, malformed=6)

# Input is produced before the worker starts: the worker then merges its topics by event time
# exactly (it knows what the broker holds), which is what makes live equal to replay. Input
# produced while a worker runs can reach the broker with cross-topic skew beyond the merge's idle
# wait; that limit is inherent to any live merge (Kafka Streams' max.task.idle.ms) and documented.


@pytest.fixture
def settings(kafka: ApacheKafka, redis_server: RedisServer, tmp_path: Path) -> Settings:
    """No warm-up, so that labels mature within these streams' 150 and 180 days."""
    rules = rules_file_without_warmup(tmp_path)
    return isolated_settings(kafka.bootstrap, redis_server.url, rules_file=rules)


def test_stream_yields_replayed_alerts_in_redis_and_on_the_topic(
    settings: Settings, artifacts: Path
) -> None:
    """A produced stream gives exactly the offline replay's alerts, once each, in both sinks."""
    messages = recorded(STREAM, settings)
    want = expected(messages, settings)
    assert want.alerts, "the seeded input must produce alerts for this test to mean anything"
    process_with_worker(settings, messages, artifacts / "worker.log")

    in_redis = [a["alert_id"] for a in redis_alerts(settings)]
    on_topic = [a["alert_id"] for a in notification_alerts(settings)]
    assert sorted(in_redis) == sorted(a.alert_id for a in want.alerts)
    assert sorted(on_topic) == sorted(in_redis)
    assert not [i for i, n in Counter(in_redis).items() if n > 1]

    training = [
        orjson.loads(v)
        for _, v in asyncio.run(read_topic(settings, settings.topics.training, partitions=1))
    ]
    assert want.examples, "the seeded input must mature labels"
    assert sorted((e["customer_id"], e["snapshot_ts"], e["label"]) for e in training) == sorted(
        (c, e.to_dict()["snapshot_ts"], e.label) for c, e in want.examples
    )

    by_id = {a["alert_id"]: a for a in redis_alerts(settings)}
    for alert in want.alerts:
        stored = by_id[alert.alert_id]
        assert stored["level"] == alert.level.label
        assert stored["kind"] == alert.kind.value
        assert stored["reasons"] and len(stored["reasons"]) <= 4
        assert stored["rules_version"] == "rules-5"


def test_bad_messages_land_in_the_dead_letter_topic_with_reasons(
    settings: Settings, artifacts: Path
) -> None:
    """Every malformed message, and nothing else, is dead-lettered with its bytes and reason."""
    messages = recorded(STREAM, settings)
    want = expected(messages, settings)
    process_with_worker(settings, messages, artifacts / "worker.log")

    letters = dead_letters(settings)
    assert len(letters) == sum(m.malformed for m in STREAM.messages) == len(want.dead_letters)
    got = sorted((original_bytes(d), d["error_code"]) for d in letters)
    assert got == sorted((m.value, e.code.value) for m, e in want.dead_letters)
    for letter in letters:
        assert letter["topic"] in settings.topics.inputs
        assert letter["offset"] >= 0 and letter["error_message"]


def test_reprocessing_the_same_input_writes_no_duplicate(
    settings: Settings, artifacts: Path
) -> None:
    """A second worker group re-reading the same input adds nothing to Redis or the topic."""
    messages = recorded(STREAM, settings)
    total = process_with_worker(settings, messages, artifacts / "first.log")
    before_redis = redis_alerts(settings)
    before_topic = notification_alerts(settings)

    again = load_settings({}, **{**_fields(settings), "app_id": settings.app_id + "-again"})
    second = WorkerProcess(again, artifacts / "second.log").start()
    try:
        wait_processed(again, total, logs=[artifacts / "second.log"])
    finally:
        second.stop()
    assert redis_alerts(settings) == before_redis
    assert notification_alerts(settings) == before_topic


def test_worker_killed_mid_stream_continues_as_if_uninterrupted(
    settings: Settings, artifacts: Path
) -> None:
    """kill -9 mid-stream, restart: state comes back from the changelog, alerts are unchanged."""
    # The merge holds a partition's last events for merge_idle_s once its repayments run out
    # (about a month before the stream's end, after this stream's first alert), so the whole
    # stream cannot be committed within 5 s of that alert. With the default 50 ms the compiled
    # worker can apply the whole stream within a second of it and commit before the kill, and
    # the test no longer tests what it says.
    settings = dataclasses.replace(settings, merge_idle_s=5.0)
    messages = recorded(LONG_STREAM, settings)
    want = expected(messages, settings)
    total = asyncio.run(produce(settings, messages))
    worker = WorkerProcess(settings, artifacts / "worker-1.log").start()
    try:
        # Kill at the first alert in Redis: events after it are applied or in flight but
        # uncommitted (commits wait for the head of each partition, which the event-time merge
        # holds back, so a first commit can come only when the whole stream is done).
        wait_until(lambda: bool(redis_alerts(settings)), 90, "a first alert")
        worker.kill()
    finally:
        worker.stop()
    committed_at_kill = asyncio.run(committed_total(settings))
    assert committed_at_kill < total, "the kill must happen before the stream is done"

    restarted = WorkerProcess(settings, artifacts / "worker-2.log").start()
    try:
        wait_processed(
            settings, total, logs=[artifacts / "worker-1.log", artifacts / "worker-2.log"]
        )
    finally:
        restarted.stop()

    assert events_applied(settings) == {c: s.events for c, s in want.states.items()}
    in_redis = [a["alert_id"] for a in redis_alerts(settings)]
    assert sorted(in_redis) == sorted(a.alert_id for a in want.alerts)
    assert set(a["alert_id"] for a in notification_alerts(settings)) == set(in_redis)
    assert not [i for i, n in Counter(in_redis).items() if n > 1]
    finals = {c: s.alert.notified.label for c, s in want.states.items()}
    levels = {a["customer_id"]: a["level"] for a in redis_alerts(settings)}
    assert levels == {c: lvl for c, lvl in finals.items() if c in levels}


def _fields(settings: Settings) -> dict[str, object]:
    return {
        name: getattr(settings, name)
        for name in ("kafka_bootstrap", "redis_url", "topic_prefix", "redis_prefix", "partitions")
    }


def test_no_commit_passes_events_the_merge_still_holds(
    kafka: ApacheKafka, redis_server: RedisServer, artifacts: Path
) -> None:
    """Faust commits up to the first run of acked offsets, whatever lies before it. The merge
    holds events while a topic (outcomes, here empty) may still send earlier ones; a message that
    failed to decode must not be acked before the held events of its partition, or a commit in
    that window passes them and a crash loses them. Hold 8 s, kill -9 after commit ticks,
    restart: the alerts must still be the replay's."""
    settings = isolated_settings(kafka.bootstrap, redis_server.url, merge_idle_s=8.0)
    messages = recorded(STREAM, settings)
    want = expected(messages, settings)
    total = asyncio.run(produce(settings, messages))
    log_path = artifacts / "worker-1.log"
    log_path.unlink(missing_ok=True)  # the wait below reads it
    worker = WorkerProcess(settings, log_path).start()
    try:
        # A dead letter is written once its message leaves the merge (with the fix), or at
        # once on fetch (without it): then past a commit tick (every second), inside the hold.
        wait_until(lambda: '"dead_letter"' in log_path.read_text(), 90, "a first dead letter")
        time.sleep(3.5)
        worker.kill()
    finally:
        worker.stop()
    restarted = WorkerProcess(settings, artifacts / "worker-2.log").start()
    try:
        wait_processed(
            settings, total, logs=[artifacts / "worker-1.log", artifacts / "worker-2.log"]
        )
    finally:
        restarted.stop()
    assert events_applied(settings) == {c: s.events for c, s in want.states.items()}
    in_redis = sorted(a["alert_id"] for a in redis_alerts(settings))
    assert in_redis == sorted(a.alert_id for a in want.alerts)
    assert len(dead_letters(settings)) == sum(m.malformed for m in STREAM.messages)
