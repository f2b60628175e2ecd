"""``ews replay``: a recording through the detectors offline, or through a broker and a worker.

Both paths report the same shape: message and dead-letter counts and every alert, in the wire
form. With the model pinned (``EWS_MODEL_PARAMS_FILE``) or learning off (``EWS_MODEL_LEARNING=0``)
they must give the identical set of ``alert_id``\\ s; with learning on, the offline replay trains
as the trainer does and publishes at fixed label counts, while a live worker receives versions
whenever the trainer publishes them, so their model versions (and ids) may differ.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from config.rules import load_rules
from config.settings import Settings, Topics
from detectors.engine import RiskDetector
from detectors.model import ModelParams, ParamScorer
from streams.applier import Trace
from streams.demo import local_services, processed, produce, start_worker, stop_process
from streams.records import decoders
from streams.replay import Learner, ReplayResult, read_recording, replay
from streams.topics import ensure_topics

CATCH_UP_S_PER_MESSAGE = 0.002
CATCH_UP_MIN_S = 90.0


def detector_for(
    settings: Settings, rules_file: str | None = None
) -> tuple[RiskDetector, Learner | None]:
    """The detector as the live system runs it, and the learner that trains it if learning is
    on: pinned parameters, or learning from matured labels, or the scorecard alone."""
    detector = RiskDetector(load_rules(rules_file or settings.rules_file), settings.model_version)
    if settings.model_params_file:
        params = ModelParams.from_json(Path(settings.model_params_file).read_bytes())
        detector.use_model(ParamScorer(params))
        return detector, None
    if not settings.model_learning:
        return detector, None
    return detector, Learner(detector, settings.model_publish_every)


def replay_recording(
    settings: Settings,
    path: str | Path,
    detector: RiskDetector,
    learner: Learner | None,
    trace: Trace | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """A recording through the worker's code with these settings, in bounded memory (the final
    states and the examples are not kept)."""
    return replay(
        read_recording(path, settings.topics),
        decoders(settings.topics),
        detector,
        settings.partitions,
        settings.max_message_bytes,
        learner=learner,
        trace=trace,
        progress=progress,
        keep=False,
    )


def replay_file(
    settings: Settings, path: str | Path, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    detector, learner = detector_for(settings)
    result = replay_recording(settings, path, detector, learner, progress=progress)
    return {
        "path": str(path),
        "via": "offline",
        "messages": result.messages,
        "dead_letters": len(result.dead_letters),
        "applied": result.applied,
        "alerts": [alert.to_dict(alert.event_time) for alert in result.alerts],
    }


def replay_via_kafka(
    settings: Settings, path: str | Path, broker: str = "auto", env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Start a broker and Redis unless the settings' environment names them, produce the
    recording before a worker starts (so its merge is exact), run one worker until every
    message is committed, and read back the notifications topic."""
    env = dict(os.environ) if env is None else env
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ews-replay-")))
        settings, _ = local_services(settings, env, broker, workdir, stack)
        run = f"replay-{uuid.uuid4().hex[:8]}"  # its own topics and group, even on a shared broker
        settings = dataclasses.replace(
            settings,
            app_id=f"ews-{run}",
            topics=Topics.with_prefix(f"ews-{run}."),
            redis_prefix=f"ews-{run}:",
        )
        asyncio.run(ensure_topics(settings))
        total = asyncio.run(produce(settings, read_recording(path, settings.topics)))
        worker = start_worker(settings, workdir / "worker.log")
        stack.callback(stop_process, worker)
        _wait_committed(settings, total, worker, workdir / "worker.log")
        alerts = asyncio.run(read_all(settings, settings.topics.notifications))
        dead = asyncio.run(read_all(settings, settings.topics.deadletter))
    return {
        "path": str(path),
        "via": "kafka",
        "messages": total,
        "dead_letters": len(dead),
        "alerts": [orjson.loads(value) for value in alerts],
    }


def _wait_committed(settings: Settings, total: int, worker: Any, log_path: Path) -> None:
    deadline = time.monotonic() + max(CATCH_UP_MIN_S, total * CATCH_UP_S_PER_MESSAGE)
    while asyncio.run(processed(settings)) < total:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.returncode}); see {log_path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not commit {total} messages; see {log_path}")
        time.sleep(0.5)


async def read_all(settings: Settings, topic: str) -> list[bytes]:
    """Every message value on ``topic`` (``settings.partitions`` of them), by partition, then
    offset."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[int, int, bytes]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=1000)
            for batch in batches.values():
                out.extend((r.partition, r.offset, r.value or b"") for r in batch)
        return [value for _, _, value in sorted(out)]
    finally:
        await consumer.stop()
