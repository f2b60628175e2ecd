"""Workers crash and come and go mid-stream: nothing lost, nothing duplicated (Apache Kafka)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from streams.localstack import ApacheKafka, RedisServer
from tests.reliability.inputs import injected, produce_stream, replayed
from tests.support import (
    assert_delivered_as_replayed,
    committed_total,
    scenario_settings,
    scenario_worker,
    wait_mid_stream,
    wait_processed,
)

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

JOIN_AFTER_S = 3.0


def test_worker_killed_mid_stream_and_restarted(
    kafka: ApacheKafka, redis_server: RedisServer, artifacts: Path
) -> None:
    """kill -9 the worker at its first alert, start it again: what it applied but did not commit
    is read again, the state comes back from the changelog, and the alerts are exactly the
    replay's, once each."""
    settings = scenario_settings(kafka.bootstrap, redis_server.url)
    total = produce_stream(settings)
    first = scenario_worker(settings, artifacts, "w1")
    try:
        first.start()
        at_kill = wait_mid_stream(settings, total)
        first.kill()
    finally:
        first.stop()
    again = scenario_worker(settings, artifacts, "w2")
    try:
        again.start()
        wait_processed(settings, total, logs=[first.log_path, again.log_path])
    finally:
        again.stop()
    delivered = assert_delivered_as_replayed(settings, replayed(settings.partitions), injected())
    print(f"killed at {at_kill}/{total} committed; {delivered}")


def test_three_workers_lose_one_then_gain_one(
    kafka: ApacheKafka, redis_server: RedisServer, artifacts: Path
) -> None:
    """Three workers share six partitions; one is killed mid-stream (its partitions move once
    its session expires), and a fourth joins meanwhile (rebalances with a member gone and one
    new): the alerts are exactly the replay's, once each."""
    settings = scenario_settings(kafka.bootstrap, redis_server.url, partitions=6)
    total = produce_stream(settings)
    workers = [scenario_worker(settings, artifacts, f"w{i}") for i in range(1, 5)]
    try:
        for worker in workers[:3]:
            worker.start()
        at_kill = wait_mid_stream(settings, total)
        workers[0].kill()
        time.sleep(JOIN_AFTER_S)  # the killed worker's session has not expired yet
        workers[3].start()
        at_join = asyncio.run(committed_total(settings))
        wait_processed(settings, total, timeout_s=120, logs=[w.log_path for w in workers])
    finally:
        for worker in workers:
            worker.stop()
    delivered = assert_delivered_as_replayed(settings, replayed(settings.partitions), injected())
    print(f"killed at {at_kill}/{total}, joined at {at_join}/{total}; {delivered}")
