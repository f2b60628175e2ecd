"""A three-broker Apache Kafka cluster (KRaft, replication 3, min.insync.replicas 2) loses a
broker mid-stream: nothing is lost or duplicated, and the broker rejoins with its data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient

from streams.localstack import KafkaCluster, RedisServer
from tests.reliability.inputs import injected, produce_stream, replayed
from tests.support import (
    assert_delivered_as_replayed,
    require_kafka,
    scenario_settings,
    scenario_worker,
    wait_mid_stream,
    wait_processed,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    require_kafka()
    with KafkaCluster(tmp_path_factory.mktemp("cluster"), size=3) as running:
        yield running


def _describe(bootstrap: str, topics: list[str]) -> list[dict[str, object]]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        described: list[dict[str, object]] = admin.describe_topics(topics)
        return described
    finally:
        admin.close()


def _leader_of(bootstrap: str, topic: str, partition: int) -> int:
    [described] = _describe(bootstrap, [topic])
    partitions = described["partitions"]
    assert isinstance(partitions, list)
    leader: int = next(p["leader_id"] for p in partitions if p["partition_index"] == partition)
    return leader


def _fully_replicated(bootstrap: str, topics: list[str]) -> bool:
    return all(
        len(p["isr_nodes"]) == 3
        for described in _describe(bootstrap, topics)
        for p in described["partitions"]  # type: ignore[attr-defined]
    )


def test_cluster_loses_the_group_coordinator_mid_stream(
    cluster: KafkaCluster, redis_server: RedisServer, artifacts: Path
) -> None:
    """Topics and changelogs with 3 replicas; kill -9 the broker that leads the consumer offsets
    (the group coordinator) at the worker's first alert and keep it down: the worker finishes
    on the other two with exactly the replay's alerts; restarted, the broker rejoins every ISR."""
    settings = scenario_settings(cluster.bootstrap, redis_server.url, replication_factor=3)
    total = produce_stream(settings)
    worker = scenario_worker(settings, artifacts, "w1")
    try:
        worker.start()
        at_kill = wait_mid_stream(settings, total)
        victim = cluster.node(_leader_of(cluster.bootstrap, "__consumer_offsets", 0))
        victim.kill()
        wait_processed(settings, total, timeout_s=180)
    finally:
        worker.stop()
    delivered = assert_delivered_as_replayed(settings, replayed(settings.partitions), injected())
    victim.start()
    survivors = ",".join(n.bootstrap for n in cluster.nodes if n is not victim)
    inputs = list(settings.topics.inputs)
    wait_until(lambda: _fully_replicated(survivors, inputs), 90, "the broker to rejoin the ISRs")
    print(f"killed broker {victim.node_id} at {at_kill}/{total}; {delivered}")
