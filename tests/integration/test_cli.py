"""The ``ews`` commands people run: clear failures, and readers of the Redis and topic state."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from config.settings import Settings, load_settings
from streams.localstack import ApacheKafka, RedisServer, free_port
from streams.simulator import generate
from tests.support import expected, process_with_worker, recorded


def ews(*args: str, env: dict[str, str], timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("EWS_")}, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def test_worker_with_unreachable_redis_says_so_in_one_line() -> None:
    """No Redis: exit 2 and one line naming Redis and its address, no traceback."""
    port = free_port()
    result = ews("worker", env={"EWS_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Redis" in lines[0] and str(port) in lines[0]


@pytest.mark.kafka
def test_worker_with_unreachable_kafka_says_so_in_one_line(redis_server: RedisServer) -> None:
    """Redis up, no broker: exit 2 and one line naming Kafka and its address, no traceback."""
    port = free_port()
    result = ews(
        "worker",
        env={"EWS_REDIS_URL": redis_server.url, "EWS_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Kafka" in lines[0] and str(port) in lines[0]


def test_bad_setting_fails_at_start_naming_the_field() -> None:
    """A bad EWS_* value stops the command with the field's name."""
    result = ews("topics", "create", env={"EWS_PARTITIONS": "many"})
    assert result.returncode == 2
    assert "partitions" in result.stderr and "EWS_PARTITIONS" in result.stderr


@pytest.mark.kafka
def test_topics_create_customer_show_and_alerts_tail(
    kafka: ApacheKafka, redis_server: RedisServer, artifacts: Path
) -> None:
    """topics create is idempotent; customer show and alerts tail print what the worker wrote."""
    tag = uuid.uuid4().hex[:8]
    settings: Settings = load_settings(
        {},
        kafka_bootstrap=kafka.bootstrap,
        redis_url=redis_server.url,
        topic_prefix=f"c{tag}.",
        app_id=f"ews-c{tag}",
        redis_prefix=f"c{tag}:",
        partitions=2,
    )
    env = settings.env_vars
    for _ in range(2):
        created = ews("topics", "create", env=env)
        assert created.returncode == 0, created.stderr
        assert f"c{tag}.transactions\t2 partitions" in created.stdout

    stream = generate(customers=10, days=150, seed=3, deteriorating_share=0.5, malformed=0)
    messages = recorded(stream, settings)
    want = expected(messages, settings)
    process_with_worker(settings, messages, artifacts / "worker.log")

    alerted = want.alerts[-1]
    shown = ews("customer", "show", alerted.customer_id, env=env)
    assert shown.returncode == 0, shown.stderr
    final = want.states[alerted.customer_id].alert.notified.label
    assert f"level          {final}" in shown.stdout
    assert "reason" in shown.stdout and alerted.alert_id in shown.stdout

    tail = ews("alerts", "tail", "--from-beginning", "--timeout", "3", env=env)
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.strip().splitlines()
    assert len(lines) == len(want.alerts)
    assert all("score" in line for line in lines)

    missing = ews("customer", "show", "nobody", env=env)
    assert missing.returncode == 1 and "no state" in missing.stdout
