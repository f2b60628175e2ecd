"""The learning loop on a real broker: labels mature, the trainer publishes, scorers follow."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import pytest

from config.settings import load_settings
from detectors.model import ModelParams
from streams.localstack import ApacheKafka, RedisServer
from streams.simulator import generate
from tests.support import (
    WorkerProcess,
    produce,
    read_topic,
    recorded,
    redis_alerts,
    rules_file_without_warmup,
    wait_processed,
    wait_until,
)

pytestmark = pytest.mark.kafka


def test_trainer_publishes_and_running_scorers_pick_it_up(
    kafka: ApacheKafka, redis_server: RedisServer, tmp_path: Path, artifacts: Path
) -> None:
    """After the trainer publishes a version, later alerts name it, with no worker restart."""
    rules = Path(rules_file_without_warmup(tmp_path)).read_text()  # labels in the first half
    rules = rules.replace('version = "rules-5"', 'version = "rules-loop"')
    rules = rules.replace("min_labels = 200", "min_labels = 20")
    rules = rules.replace("full_weight_labels = 2000", "full_weight_labels = 60")
    (tmp_path / "rules.toml").write_text(rules)
    tag = uuid.uuid4().hex[:8]
    settings = load_settings(
        {},
        kafka_bootstrap=kafka.bootstrap,
        redis_url=redis_server.url,
        topic_prefix=f"m{tag}.",
        app_id=f"ews-m{tag}",
        redis_prefix=f"m{tag}:",
        partitions=2,
        rules_file=str(tmp_path / "rules.toml"),
        model_publish_every=20,
    )
    messages = recorded(generate(customers=80, days=240, seed=4, malformed=0), settings)
    first, second = messages[: len(messages) // 2], messages[len(messages) // 2 :]
    changelog = f"{settings.app_id}-model-changelog"

    def published() -> list[ModelParams]:
        records = asyncio.run(read_topic(settings, changelog, partitions=1))
        return [ModelParams.from_json(value) for key, value in records if key == b"current"]

    worker = WorkerProcess(settings, artifacts / "worker.log").start()
    try:
        wait_processed(settings, asyncio.run(produce(settings, first)), timeout_s=120)
        wait_until(lambda: len(published()) > 0, 60, "a published model version")
        versions = {p.version for p in published()}
        total = len(first) + asyncio.run(produce(settings, second))
        wait_processed(settings, total, timeout_s=120)
    finally:
        worker.stop()

    assert all(v.startswith("lr-") for v in versions)
    examples = asyncio.run(read_topic(settings, settings.topics.training, partitions=1))
    assert len(examples) >= 20
    assert {orjson.loads(v)["label"] for _, v in examples} == {True, False}
    named = {a["model_version"] for a in redis_alerts(settings)}
    assert named & {p.version for p in published()}, f"alerts named only {named}"
    assert all(a["features_hash"] for a in redis_alerts(settings))
