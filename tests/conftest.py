"""Session-wide real services: Apache Kafka (KRaft) and redis-server on free loopback ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.localstack import ApacheKafka, RedisServer, java_and_maven_available


def _kafka_or_skip() -> None:
    if java_and_maven_available():
        return
    if os.environ.get("EWS_REQUIRE_KAFKA") == "1":
        pytest.fail("EWS_REQUIRE_KAFKA=1 but Java or Maven is missing: cannot start Apache Kafka")
    pytest.skip("Java or Maven not found: Apache Kafka tests need both")


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    _kafka_or_skip()
    broker = ApacheKafka(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A per-test folder under test-output/ for logs worth keeping after a failure."""
    path = Path("test-output") / request.node.name.replace("/", "_")
    path.mkdir(parents=True, exist_ok=True)
    return path
