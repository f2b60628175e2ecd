"""``ews deadletter replay``: after a fix, dead letters go back to their topic, each once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from config.settings import load_settings
from streams.localstack import ApacheKafka, RedisServer
from streams.replay import Recorded
from streams.simulator import generate
from tests.integration.test_rebuild import ews
from tests.support import (
    WorkerProcess,
    dead_letters,
    isolated_settings,
    original_bytes,
    produce,
    recorded,
    wait_processed,
)

pytestmark = pytest.mark.kafka

STREAM = generate(customers=10, days=60, seed=9, malformed=3)


def test_dead_letters_are_replayed_once_after_the_cause_is_fixed(
    kafka: ApacheKafka, redis_server: RedisServer, artifacts: Path
) -> None:
    """An oversized but valid transaction is dead-lettered; with the limit raised and a replay it
    is applied; the malformed ones fail again; a second replay sends only those new failures."""
    settings = isolated_settings(kafka.bootstrap, redis_server.url, partitions=2)
    messages = recorded(STREAM, settings)
    valid = next(m for m in messages if m.topic == settings.topics.transactions)
    big = orjson.loads(valid.value)
    big |= {"event_id": big["event_id"] + "-big", "note": "x" * settings.max_message_bytes}
    messages.append(Recorded(valid.topic, valid.key, orjson.dumps(big)))
    total = asyncio.run(produce(settings, messages))
    worker = WorkerProcess(settings, artifacts / "worker-1.log").start()
    try:
        wait_processed(settings, total)
    finally:
        worker.stop()
    first = dead_letters(settings)
    assert sorted(d["error_code"] for d in first).count("oversized") == 1
    assert len(first) == 4

    dry = ews(settings, "deadletter", "replay", "--dry-run")
    assert dry.returncode == 0 and "4 dead letters" in dry.stdout and "would replay 4" in dry.stdout

    fixed = load_settings({}, **{**_fields(settings), "max_message_bytes": 4 * 65536})
    done = ews(fixed, "deadletter", "replay")
    assert done.returncode == 0 and "replayed 4" in done.stdout, done.stdout + done.stderr
    worker = WorkerProcess(fixed, artifacts / "worker-2.log").start()
    try:
        wait_processed(fixed, total + 4)
    finally:
        worker.stop()
    letters = dead_letters(settings)
    again = [d for d in letters if d not in first]
    assert len(again) == 3, "the malformed ones fail again; the big one is applied"
    assert "oversized" not in {d["error_code"] for d in again}
    assert sorted(original_bytes(d) for d in again) == sorted(
        original_bytes(d) for d in first if d["error_code"] != "oversized"
    )

    second = ews(fixed, "deadletter", "replay", "--dry-run")
    assert "3 dead letters" in second.stdout, "only what failed since the last replay"


def _fields(settings: object) -> dict[str, object]:
    names = ("kafka_bootstrap", "redis_url", "topic_prefix", "app_id", "redis_prefix",
             "partitions", "model_learning")  # fmt: skip
    return {name: getattr(settings, name) for name in names}
