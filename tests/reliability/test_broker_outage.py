"""A single Apache Kafka broker freezes, or crashes and restarts, mid-stream: the worker waits
and carries on, and nothing is lost or duplicated. The broker is this module's own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.localstack import ApacheKafka, RedisServer
from tests.reliability.inputs import injected, produce_stream, replayed
from tests.support import (
    assert_delivered_as_replayed,
    require_kafka,
    scenario_settings,
    scenario_worker,
    wait_mid_stream,
    wait_processed,
)

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

OUTAGE_S = 10.0


@pytest.fixture(scope="module")
def own_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    """A broker this module alone pauses and kills."""
    require_kafka()
    broker = ApacheKafka(tmp_path_factory.mktemp("own-kafka"))
    broker.start()
    yield broker
    broker.stop()


def test_broker_paused_for_ten_seconds_mid_stream(
    own_kafka: ApacheKafka, redis_server: RedisServer, artifacts: Path
) -> None:
    """SIGSTOP the broker at the worker's first alert, SIGCONT 10 s later: the worker catches up to
    exactly the replay's alerts."""
    settings = scenario_settings(own_kafka.bootstrap, redis_server.url)
    total = produce_stream(settings)
    worker = scenario_worker(settings, artifacts, "w1")
    try:
        worker.start()
        at_pause = wait_mid_stream(settings, total)
        own_kafka.pause()
        try:
            time.sleep(OUTAGE_S)
        finally:
            own_kafka.resume()
        wait_processed(settings, total)
        assert worker.proc is not None and worker.proc.poll() is None, "the worker exited"
    finally:
        worker.stop()
    delivered = assert_delivered_as_replayed(settings, replayed(settings.partitions), injected())
    print(f"paused at {at_pause}/{total}; {delivered}")


def test_broker_killed_and_restarted_mid_stream(
    own_kafka: ApacheKafka, redis_server: RedisServer, artifacts: Path
) -> None:
    """kill -9 the broker at the worker's first alert and start it again on the same data: the
    worker reconnects and catches up to exactly the replay's alerts."""
    settings = scenario_settings(own_kafka.bootstrap, redis_server.url)
    total = produce_stream(settings)
    worker = scenario_worker(settings, artifacts, "w1")
    try:
        worker.start()
        at_kill = wait_mid_stream(settings, total)
        own_kafka.kill()
        own_kafka.start()
        wait_processed(settings, total)
        assert worker.proc is not None and worker.proc.poll() is None, "the worker exited"
    finally:
        worker.stop()
    delivered = assert_delivered_as_replayed(settings, replayed(settings.partitions), injected())
    print(f"killed at {at_kill}/{total}; {delivered}")
