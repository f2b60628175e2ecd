"""``ews replay`` offline and ``--via-kafka`` (a real broker and worker) emit the same alert ids."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.localstack import ApacheKafka, RedisServer
from tests.integration.test_cli import ews


@pytest.mark.kafka
def test_offline_and_via_kafka_replays_emit_the_same_alert_ids(
    kafka: ApacheKafka, redis_server: RedisServer, tmp_path: Path
) -> None:
    """A recording from ``ews simulate``; same rules, learning off: the identical set of
    alert_ids both ways, and the same dead letters; the via-Kafka run uses its own topics on the
    shared broker."""
    recording = tmp_path / "small.jsonl"
    env = {
        "EWS_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "EWS_REDIS_URL": redis_server.url,
        "EWS_MODEL_LEARNING": "false",
    }
    simulate = ["simulate", "--customers", "30", "--months", "6", "--seed", "4"]
    simulate += ["--deteriorating-share", "0.5", "--malformed-share", "0.002"]
    made = ews(*simulate, "--out", str(recording), env=env)
    assert made.returncode == 0, made.stderr[-3000:]
    reports = {}
    for via in ("offline", "kafka"):
        report = tmp_path / f"{via}.json"
        args = ["replay", "--input", str(recording), "--report", str(report)]
        result = ews(*args, *(["--via-kafka"] if via == "kafka" else []), env=env, timeout_s=240)
        assert result.returncode == 0, result.stderr[-3000:]
        reports[via] = orjson.loads(report.read_bytes())
    offline, live = reports["offline"], reports["kafka"]
    assert len(offline["alerts"]) >= 10, "the seeded input must raise alerts"
    assert {a["alert_id"] for a in live["alerts"]} == {a["alert_id"] for a in offline["alerts"]}
    assert len(live["alerts"]) == len(offline["alerts"]), "no alert twice on the topic"
    assert live["dead_letters"] == offline["dead_letters"] > 0
    assert live["messages"] == offline["messages"]
