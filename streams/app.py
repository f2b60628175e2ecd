"""The Faust app: topics, the customer table and the risk agent, built from settings."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from config.rules import Rules
from config.settings import Settings
from detectors.engine import RiskDetector
from detectors.model import ModelParams, ParamScorer
from sinks.delivery import Delivery
from sinks.notifications import NotificationSink
from sinks.redis import RedisLayout, redis_sink
from streams import faust_fixes, health, web
from streams.changelog import ChangelogWriter
from streams.dead_lettering import DeadLetterWriter, KafkaLetterBox
from streams.lane import FastLane
from streams.pipeline import Pipeline
from streams.records import decoders
from streams.trainer import CURRENT_KEY, Trainer
from streams.watchdog import CommitWatchdog

ROCKSDB_OPTIONS = {
    "write_buffer_size": 8 * 1024**2,
    "max_write_buffer_number": 2,
    "block_cache_size": 32 * 1024**2,
}
"""Per partition of the customers table (Faust's defaults: 64 MB write buffers, three of them,
and a 2 GB block cache, each per partition). The worker keeps its hot states decoded in its own
cache (``EWS_STATE_CACHE_CUSTOMERS``), so RocksDB's caches can stay small."""


def create_app(settings: Settings, rules: Rules) -> faust.App:
    faust_fixes.install()
    app = faust.App(
        settings.app_id,
        broker=";".join(f"kafka://{hp.strip()}" for hp in settings.kafka_bootstrap.split(",")),
        broker_credentials=_credentials(settings),
        store=settings.store,
        datadir=settings.data_dir,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        web_host=settings.web_host or socket.gethostname(),  # Faust's default, by name
        broker_commit_interval=1.0,
        # A crashed worker's partitions move on once its session expires: keep that short.
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=settings.kafka_session_timeout_s / 5,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_batch_size=512 * 1024,  # the changelog goes out in bulk (streams.changelog)
        # A standby copies other workers' table partitions from their changelogs, record by
        # record through Faust's recovery: in a group of two it cost each worker a third of its
        # events per CPU-second (ews bench, pipeline-2w). Off unless configured.
        table_standby_replicas=settings.standby_replicas,
    )
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    inputs = app.topic(*settings.topics.inputs, partitions=settings.partitions, **raw)
    table = app.Table(
        "customers",
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        options=ROCKSDB_OPTIONS if settings.store.startswith("rocksdb") else None,
    )
    training = app.topic(settings.topics.training, partitions=1, **raw)
    model_table = app.GlobalTable("model", partitions=1, key_type=bytes, value_type=bytes)
    detector = RiskDetector(rules, settings.model_version)
    model_source = None
    if settings.model_params_file:  # pinned: never follow newer versions
        params = ModelParams.from_json(Path(settings.model_params_file).read_bytes())
        detector.use_model(ParamScorer(params))
    elif settings.model_learning:
        model_source = lambda: model_table.get(CURRENT_KEY)  # noqa: E731
    lane = FastLane(app, settings.topics.inputs)
    lane.install()
    pipeline = Pipeline(
        detector=detector,
        lane=lane,
        delivery=_delivery(settings),
        training_topic=training,
        model_source=model_source,
        decoders=decoders(settings.topics),
        table=table,
        dead_letters=DeadLetterWriter(
            KafkaLetterBox(settings, lambda: app.producer._ensure_producer()),  # type: ignore[attr-defined]
            note=table.get,
            save_notes=lambda writes: ChangelogWriter(table).write(writes, delivered=True),
            max_message_bytes=settings.max_message_bytes,
        ),
        highwater=lambda tp: _highwater(app, tp),
        committed=lambda tp: _committed(app, tp),
        watchdog=CommitWatchdog(
            committed=GroupOffsets(settings).committed,
            # seek_wait runs the seek in the consumer's thread, where aiokafka lives; Faust's
            # Consumer.seek calls aiokafka from the event loop's thread.
            reseek=lambda tp, offset: app.consumer.seek_wait({faust.types.TP(*tp): offset}),
            clock=time.monotonic,
            head=lambda tp: faust_fixes.first_read(app.consumer, faust.types.TP(*tp)),
            idle=lambda: _idle(app, pipeline, settings.topics.inputs),  # pipeline: just below
        ),
        max_message_bytes=settings.max_message_bytes,
        state_cache_customers=settings.state_cache_customers,
        merge_idle_s=settings.merge_idle_s,
    )

    async def risk(stream: Any) -> None:
        await pipeline.run(stream)

    app.agent(inputs, name="risk", concurrency=1)(risk)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        pipeline.revoked({tp.partition for tp in revoked if tp.topic in settings.topics.inputs})

    app.pipeline = pipeline  # type: ignore[attr-defined]
    probes = web.Probes(app, pipeline, settings.topics.inputs)
    if settings.web_port:
        web.install(app, probes, table)
    heartbeat = health.Heartbeat(
        pipeline.delivery.redis.client, RedisLayout(settings.redis_prefix), probes
    )
    app.timer(interval=heartbeat.interval_s, name="health")(heartbeat.beat)

    async def stuck_batch() -> None:
        pipeline.report_stuck()

    app.timer(interval=10.0, name="stuck_batch")(stuck_batch)
    if settings.model_learning and not settings.model_params_file:
        trainer = Trainer(
            state_table=app.Table("trainer", partitions=1, key_type=bytes, value_type=bytes),
            model_table=model_table,
            publish_every=settings.model_publish_every,
            steps=rules.model.steps,
        )

        async def train(stream: Any) -> None:
            await trainer.run(stream)

        app.agent(training, name="trainer", concurrency=1)(train)
    return app


def _delivery(settings: Settings) -> Delivery:
    redis = redis_sink(settings)
    notifications = NotificationSink(
        settings.kafka_bootstrap,
        settings.topics.notifications,
        idempotent=settings.kafka_idempotent_producer,
        client_options=settings.kafka_client_options(),
    )
    return Delivery(
        redis, notifications, clock=lambda: datetime.now(UTC), retry_max_s=settings.sink_retry_max_s
    )


def _highwater(app: faust.App, tp: tuple[str, int]) -> int | None:
    try:
        value = app.consumer.highwater(faust.types.TP(*tp))
    except Exception:  # consumer not started or partition not assigned yet
        return None
    return value if isinstance(value, int) and value >= 0 else None


def _idle(app: faust.App, pipeline: Pipeline, inputs: Sequence[str]) -> dict[tuple[str, int], int]:
    """The input partitions assigned here that the pipeline holds no message of, with their
    last known highwater; none while a rebalance stops the flow or fetched lists wait."""
    if not pipeline.lane.flowing():
        return {}
    idle = {}
    for tp in app.consumer.assignment():
        key = (tp.topic, tp.partition)
        if tp.topic in inputs and not pipeline.holds(key):
            highwater = _highwater(app, key)
            if highwater is not None:
                idle[key] = highwater
    return idle


def _committed(app: faust.App, tp: tuple[str, int]) -> int | None:
    """The committed offset the consumer knows for ``tp`` (set by its seek to the committed
    offsets after an assignment, then by its commits); None if unknown or nothing committed."""
    try:
        offset = app.consumer._committed_offset.get(faust.types.TP(*tp))  # type: ignore[attr-defined]
    except Exception:  # consumer not started yet
        return None
    return offset if isinstance(offset, int) else None


class GroupOffsets:
    """The worker group's committed offsets, asked of the broker (OffsetFetch) by a client that
    does not join the group."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: AIOKafkaConsumer | None = None

    async def committed(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
        if self._client is None:
            self._client = AIOKafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap,
                group_id=self.settings.app_id,
                enable_auto_commit=False,
                **self.settings.kafka_client_options(),
            )
            await self._client.start()
        return {tp: await self._client.committed(TopicPartition(*tp)) for tp in tps}


def _credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    options = settings.kafka_client_options()
    if protocol == "SSL":
        return faust.SSLCredentials(options["ssl_context"])
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password,
        mechanism=options["sasl_mechanism"],
        ssl_context=options.get("ssl_context"),
    )
