"""``ews demo`` end to end, as a newcomer runs it: real services started by the demo itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.localstack import java_and_maven_available


def run_demo(tmp_path: Path, *args: str, timeout_s: float = 240) -> dict[str, Any]:
    summary = tmp_path / "s.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EWS_")}
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--summary-json", str(summary), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=timeout_s,
    )
    (tmp_path / "demo.out").write_bytes(result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    data: dict[str, Any] = orjson.loads(summary.read_bytes())
    return data


def assert_consistent(s: dict[str, Any]) -> None:
    assert s["events_processed"] == s["events_produced"] > 0
    assert s["dead_letters"] == s["malformed_injected"]
    assert s["alerts_in_redis"] == s["notifications_distinct"] == s["notifications_messages"] > 0


@pytest.mark.kafka
def test_demo_on_apache_kafka_meets_the_acceptance(tmp_path: Path) -> None:
    """60 s demo, 200 simulated customers over a year: all events processed, alerts equal in
    Redis and on the topic, DLQ = injected, 80 % of those who reach 30+ DPD warned before."""
    if not java_and_maven_available():
        pytest.skip("Java or Maven not found")
    s = run_demo(
        tmp_path, "--duration", "60", "--broker", "kafka", "--customers", "200", "--rate", "3000"
    )
    assert s["broker"] == "Apache Kafka"
    assert_consistent(s)
    assert s["malformed_injected"] > 0
    assert s["reached_30dpd"] > 0
    assert s["amber_or_red_before_30dpd"] >= 0.8 * s["reached_30dpd"]
    assert s["healthy_above_watch"] <= 0.05 * s["healthy_customers"]
    out = (tmp_path / "demo.out").read_text()
    assert "escalated" in out and "score" in out, "alerts must be shown as they arrive"


@pytest.mark.tansu
def test_demo_smoke_on_tansu(tmp_path: Path) -> None:
    """The no-Java fallback runs the same path on tansu and says it is a first-look broker."""
    s = run_demo(
        tmp_path, "--duration", "45", "--broker", "tansu", "--customers", "20", "--days", "150"
    )
    assert s["broker"] == "tansu"
    assert_consistent(s)
    assert "tansu" in (tmp_path / "demo.out").read_text()
