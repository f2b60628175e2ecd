"""A worker on SASL-authenticated Apache Kafka and password-protected Redis never logs a secret."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config.settings import Settings, load_settings
from sinks.redis import RedisLayout
from streams.demo import produce
from streams.localstack import ApacheKafka, RedisServer, free_port
from streams.simulator import generate
from streams.topics import ensure_topics
from tests.integration.test_ops import get
from tests.support import WorkerProcess, expected, recorded, wait_processed, wait_until

pytestmark = pytest.mark.kafka

KAFKA_USER = "svc-ews"
KAFKA_SECRET = f"kafka-pw-{uuid.uuid4().hex}"
REDIS_SECRET = f"redis-pw-{uuid.uuid4().hex}"
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
STREAM = generate(customers=20, days=120, seed=5, malformed=2)


class SaslKafka(ApacheKafka):
    """Apache Kafka with a second listener, SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256 and
    SCRAM-SHA-512, for one user (the plaintext listener stays for the broker's readiness probe
    and for creating the SCRAM credentials)."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.sasl_port = free_port()

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    def _server_properties(self) -> str:
        props = dict(
            line.split("=", 1) for line in super()._server_properties().splitlines() if line
        )
        sasl = f"SASL_PLAINTEXT://{self.sasl_bootstrap}"
        props["listeners"] += f",{sasl}"
        props["advertised.listeners"] += f",{sasl}"
        props["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
        props["sasl.enabled.mechanisms"] = ",".join(MECHANISMS)
        props["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{KAFKA_USER}="{KAFKA_SECRET}";'
        )
        for scram in MECHANISMS[1:]:
            props[f"listener.name.sasl_plaintext.{scram.lower()}.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
        return "".join(f"{key}={value}\n" for key, value in props.items())

    def add_scram_credentials(self) -> None:
        """The user's SCRAM credentials, stored in the cluster (as ``kafka-configs.sh`` does)."""
        for scram in MECHANISMS[1:]:
            argv = self._java(
                "kafka.admin.ConfigCommand",
                "--bootstrap-server", self.bootstrap,
                "--alter", "--add-config", f"{scram}=[password={KAFKA_SECRET}]",
                "--entity-type", "users", "--entity-name", KAFKA_USER,
            )  # fmt: skip
            subprocess.run(argv, capture_output=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def sasl_kafka(kafka: ApacheKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslKafka]:
    """(Depends on ``kafka`` only to share its skip when Java or Maven is missing.)"""
    broker = SaslKafka(tmp_path_factory.mktemp("sasl-kafka"))
    broker.start()
    broker.add_scram_credentials()
    yield broker
    broker.stop()


class AuthRedis(RedisServer):
    """redis-server with ``requirepass``; its readiness probe authenticates."""

    def _probe(self) -> bool:
        client = redis.Redis.from_url(self.url, password=REDIS_SECRET, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()


@pytest.fixture(scope="module")
def auth_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = AuthRedis(
        tmp_path_factory.mktemp("auth-redis"), extra_args=["--requirepass", REDIS_SECRET]
    )
    server.start()
    yield server
    server.stop()


def secure_settings(kafka: SaslKafka, redis_server: RedisServer, **extra: object) -> Settings:
    tag = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "kafka_bootstrap": kafka.sasl_bootstrap,
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "PLAIN",
        "kafka_sasl_username": KAFKA_USER,
        "kafka_sasl_password": KAFKA_SECRET,
        "redis_url": redis_server.url,
        "redis_password": REDIS_SECRET,
        "topic_prefix": f"t{tag}.",
        "app_id": f"ews-t{tag}",
        "redis_prefix": f"t{tag}:",
        "partitions": 2,
        "model_learning": False,
        "web_port": free_port(),
    }
    return load_settings({}, **{**values, **extra})


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_worker_runs_on_sasl_and_redis_auth_and_logs_no_secret(
    sasl_kafka: SaslKafka, auth_redis: RedisServer, artifacts: Path, mechanism: str
) -> None:
    """Alerts flow through SASL Kafka into AUTH Redis; the debug log holds neither password."""
    settings = secure_settings(
        sasl_kafka, auth_redis, log_level="debug", kafka_sasl_mechanism=mechanism
    )
    messages = recorded(STREAM, settings)
    want = expected(messages, settings)
    asyncio.run(ensure_topics(settings))
    total = asyncio.run(produce(settings, messages))
    log_path = artifacts / "worker.log"
    worker = WorkerProcess(settings, log_path).start()
    try:
        wait_processed(settings, total)
        wait_until(
            lambda: get(f"http://127.0.0.1:{settings.web_port}/readyz")[0] == 200, 30, "ready"
        )
    finally:
        worker.stop()
    client = redis.Redis.from_url(settings.redis_url, password=REDIS_SECRET)
    assert client.xlen(RedisLayout(settings.redis_prefix).alerts) == len(want.alerts) > 0
    client.close()

    text = log_path.read_text(errors="replace")
    assert "worker_starting" in text and "alert_emitted" in text
    assert KAFKA_SECRET not in text
    assert REDIS_SECRET not in text


def test_refused_credentials_are_reported_without_the_secret(
    sasl_kafka: SaslKafka, auth_redis: RedisServer
) -> None:
    """A wrong Redis password stops ``ews worker`` with one line that does not echo it."""
    wrong = f"wrong-{uuid.uuid4().hex}"
    settings = secure_settings(sasl_kafka, auth_redis, redis_password=wrong)
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"],
        env={**os.environ, **settings.env_vars, "EWS_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "cannot reach Redis" in done.stderr
    assert wrong not in done.stdout + done.stderr
    assert KAFKA_SECRET not in done.stdout + done.stderr
