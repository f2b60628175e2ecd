"""10 % malformed input at full rate: every bad message lands in the dead-letter topic once, the
good ones give exactly the replay's alerts, and the throughput is measured against clean input.

The throughput ratio is printed (run with ``-s``), not asserted: the suite runs on shared,
noisy machines, and the project keeps timed figures out of its assertions (``ews bench`` is
where throughput is measured properly)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from config.settings import Settings
from streams.localstack import ApacheKafka, RedisServer
from streams.replay import Recorded
from tests.reliability.inputs import DIRTY_SHARE, injected, produce_stream, replayed, stream
from tests.support import (
    assert_delivered_as_replayed,
    dead_letters,
    original_bytes,
    produce,
    recorded,
    scenario_settings,
    scenario_worker,
    wait_processed,
)

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

POLL_S = 0.1


async def _all_committed_at(settings: Settings, total: int, timeout_s: float = 180.0) -> float:
    """The wall-clock time at which the group has committed ``total`` input events."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.app_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    inputs = [
        TopicPartition(t, p) for t in settings.topics.inputs for p in range(settings.partitions)
    ]
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if sum([(await consumer.committed(tp)) or 0 for tp in inputs]) >= total:
                return time.time()
            await asyncio.sleep(POLL_S)
    finally:
        await consumer.stop()
    raise AssertionError(f"{settings.app_id}: {total} events not committed in {timeout_s:.0f} s")


def _ready_at(log_path: Path) -> float:
    """When Faust logged the worker ready (its local-time stamp), as a wall-clock time."""
    for line in log_path.read_text(errors="replace").splitlines():
        if "[^Worker]: Ready" in line:
            stamp = line[1 : line.index("]")]
            return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
    raise AssertionError(f"no 'Ready' line in {log_path}")


def _run(settings: Settings, name: str, artifacts: Path) -> float:
    """Events/s from the worker's ready line to the commit of the last event: the commits alone
    cannot time it (a busy worker commits seldom and its changelog is flushed at commits)."""
    total = produce_stream(settings, name)
    worker = scenario_worker(settings, artifacts, name)
    try:
        worker.start()
        done = asyncio.run(_all_committed_at(settings, total))
    finally:
        worker.stop()
    return total / max(done - _ready_at(worker.log_path), 1e-3)


def test_ten_percent_malformed_input_all_dead_lettered_at_full_rate(
    kafka: ApacheKafka, redis_server: RedisServer, artifacts: Path
) -> None:
    """One population without and with 10 % malformed messages, each pre-produced and read at
    full rate by a fresh worker: the dirty run dead-letters exactly the injected messages, once
    each, and raises exactly the replay's alerts; the two rates are reported."""
    bad = injected("dirty")
    share = len(bad) / len(stream("dirty").messages)
    assert abs(share - 0.1) < 0.01 and not injected("clean")
    clean = scenario_settings(kafka.bootstrap, redis_server.url)
    dirty = scenario_settings(kafka.bootstrap, redis_server.url)
    clean_rate = _run(clean, "clean", artifacts)
    dirty_rate = _run(dirty, "dirty", artifacts)
    delivered = assert_delivered_as_replayed(dirty, replayed(dirty.partitions, "dirty"), bad)
    assert delivered.dead_letters == len(bad)
    print(
        f"malformed share {share:.3f} (simulator share {DIRTY_SHARE:.3f}); "
        f"clean {clean_rate:,.0f} events/s, dirty {dirty_rate:,.0f} events/s, "
        f"ratio {dirty_rate / clean_rate:.2f} (target >= 0.80, reported, not asserted); "
        f"{delivered}"
    )


def test_message_too_large_to_dead_letter_whole_is_dead_lettered_cut(
    kafka: ApacheKafka, redis_server: RedisServer, artifacts: Path
) -> None:
    """An 800 kB message passes the broker's limit on the input topic, but whole and in base64 it
    would not fit in a dead letter: it is dead-lettered as oversized with its first
    ``max_message_bytes`` bytes and its length, and the events after it are processed."""
    settings = scenario_settings(kafka.bootstrap, redis_server.url)
    customer = stream().messages[0].key
    huge = orjson.dumps(
        {"schema_version": 1, "customer_id": customer.decode(), "pad": "9" * 800_000}
    )
    follow = recorded(stream(), settings)[:300]
    total = asyncio.run(
        produce(settings, [Recorded(settings.topics.transactions, customer, huge), *follow])
    )
    worker = scenario_worker(settings, artifacts, "w1")
    try:
        worker.start()
        wait_processed(settings, total, timeout_s=60)
    finally:
        worker.stop()
    [letter] = dead_letters(settings)
    assert letter["error_code"] == "oversized"
    assert letter["payload_truncated"] is True and letter["payload_bytes"] == len(huge)
    assert original_bytes(letter) == huge[: settings.max_message_bytes]
