"""The agent body: take fetched messages from the fast lane (``streams.lane``), decode, merge by
event time, call the detector, deliver, write state, then ack.

The guarantees live here, in this order, for every batch:

1. bad messages are written to the dead-letter topic, once each (never dropped, never fatal;
   ``streams.dead_lettering``);
2. good events are applied in event-time merge order, with the event-time sweep they drive
   (``streams.applier``); a redelivered event is skipped by the per-topic offset in the
   customer's state;
3. matured training examples are handed to the producer in bulk (``streams.changelog``), and
   alerts are delivered to Redis and the notifications topic, retried until both acknowledge;
4. each changed customer's state, then the sweep agenda and clock, are written once to the
   changelog-backed table, in bulk (``streams.changelog``);
5. only then are the messages acked, in offset order per topic partition (undecodable ones
   leave the merger in their place), and Faust commits offsets after flushing its producer
   (dead letters, training examples and changelog included).

A crash anywhere before 5 redelivers the batch; steps 2 and 3 make that harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from aiokafka.partitioner import DefaultPartitioner

from detectors.engine import RiskDetector
from detectors.events import Feedback
from detectors.labels import LabelledExample
from detectors.model import ModelParams, ParamScorer
from sinks.delivery import Delivery
from streams.applier import BatchResult, StateCache, apply_batch
from streams.changelog import ChangelogWriter, produce_batches
from streams.dead_lettering import DeadLetterWriter
from streams.lane import FastLane
from streams.merge import EventTimeMerger, Pending, merge_key, undecodable
from streams.records import DecodeError, Decoder, decode, not_after
from streams.watchdog import BatchTimer, CommitWatchdog, where

log = structlog.get_logger(__name__)
_PARTITIONER = DefaultPartitioner()  # what a keyed send without a partition uses


@dataclass(slots=True)
class Counters:
    events_in: int = 0
    applied: int = 0
    skipped: int = 0
    dead_letters: int = 0
    alerts: int = 0
    examples: int = 0
    human_labels: int = 0  # of examples: from people's false_positive / confirmed_risk
    feedback: int = 0
    ticks: int = 0
    expired: int = 0


class Pipeline:
    """Owns the per-worker objects the agent needs; :meth:`run` is the agent."""

    def __init__(
        self,
        *,
        detector: RiskDetector,
        delivery: Delivery,
        decoders: dict[str, Decoder],
        lane: FastLane,
        table: Any,
        dead_letters: DeadLetterWriter,
        training_topic: Any,
        model_source: Callable[[], bytes | None] | None,
        highwater: Callable[[tuple[str, int]], int | None],
        committed: Callable[[tuple[str, int]], int | None] = lambda tp: None,
        watchdog: CommitWatchdog | None = None,
        max_message_bytes: int,
        state_cache_customers: int = 50_000,
        batch_within_s: float = 0.02,
        max_batch_events: int = 2000,
        merge_idle_s: float = 0.05,
        merge_max_wait_s: float = 30.0,
        report_every_s: float = 5.0,
    ) -> None:
        self.report_every_s = report_every_s
        self.detector = detector
        self.delivery = delivery
        self.decoders = decoders
        self.lane = lane
        self.table = table
        self.changelog = ChangelogWriter(table)
        self.dead_letters = dead_letters
        self.training_topic = training_topic
        self.model_source = model_source
        self._model_raw: bytes | None = None
        self.max_message_bytes = max_message_bytes
        self.batch_within_s = batch_within_s
        self.max_batch_events = max_batch_events  # a batch holds the loop: keep it short
        self.merger = EventTimeMerger(
            list(decoders),
            highwater=highwater,
            committed=committed,
            clock=time.monotonic,
            idle_s=merge_idle_s,
            max_wait_s=merge_max_wait_s,
        )
        self.counters = Counters()
        self.alerts_by: dict[tuple[str, str], int] = {}  # (level, kind): alerts emitted
        self.cache = StateCache(state_cache_customers)
        self._gave_up_reported = 0
        self.watchdog = watchdog
        self._event_time: datetime | None = None
        self._agent: asyncio.Task[Any] | None = None
        self.batch_timer = BatchTimer(time.monotonic)

    @property
    def event_time(self) -> datetime | None:
        """The largest event time of a bank event (transaction, repayment, outcome) this worker
        has applied; None before the first."""
        return self._event_time

    async def run(self, stream: Any) -> None:
        """The agent. ``stream`` only subscribes the input topics: their messages arrive through
        the lane, a fetch at a time. Between fetches, release what the merge allows, at most
        ``max_batch_events`` at a time; while a full batch was ready, take no new fetch (the
        lane's bounded queue then holds the fetcher back)."""
        self._agent = asyncio.current_task()
        await self.delivery.start()
        guard = asyncio.ensure_future(_refuse(stream))
        next_report = time.monotonic() + self.report_every_s
        backlog = False
        try:
            while not guard.done():
                if time.monotonic() >= next_report:
                    next_report = time.monotonic() + self.report_every_s
                    await self._report()
                if not self.lane.flowing():
                    self._let_go()
                if not backlog:
                    self._take(await self.lane.take(self.batch_within_s, self.max_batch_events))
                released = self.merger.pop_ready(self.max_batch_events)
                backlog = len(released) >= self.max_batch_events
                await self._process(released)
            guard.result()
        finally:
            guard.cancel()
            with suppress(asyncio.CancelledError):
                await guard
            await self.delivery.close()
            await self.dead_letters.close()

    async def _report(self) -> None:
        """Every few seconds: progress in the log, and the commit watchdog's look."""
        log.info(
            "pipeline_progress",
            buffered=len(self.merger),
            merge_gave_up=self.merger.gave_up,
            **asdict(self.counters),
        )
        if self.merger.gave_up > self._gave_up_reported:
            self._gave_up_reported = self.merger.gave_up
            log.warning(
                "merge_wait_expired",
                times=self.merger.gave_up,
                hint="a topic partition with data on the broker was not fetched within "
                "merge_max_wait_s; events of its partition may have gone out of event-time order",
            )
        if self.watchdog is not None:
            await self.watchdog.check()

    def holds(self, tp: tuple[str, int]) -> bool:
        """True while messages of ``tp`` may be in this worker: in the merge, or in the lane's
        queue (fetched lists are not sorted by partition, so any queued list counts)."""
        return self.merger.holds(tp) or not self.lane.queue.empty()

    def report_stuck(self) -> None:
        """For a timer, off the agent: a batch in hand for too long (sinks and the changelog
        retry until they answer, so a batch can wait indefinitely) is logged with where the
        agent waits, so that a stall is never silent."""
        stuck = self.batch_timer.stuck()
        if stuck is not None and self._agent is not None:
            waited, messages = stuck
            log.warning(
                "batch_stuck", waited_s=round(waited), messages=messages, at=where(self._agent)
            )

    def _take(self, messages: list[Any]) -> None:
        """Decode fetched messages into the merger, those that fail to decode too (they leave it
        in offset order with the rest, so acks never pass an event the merger still holds)."""
        latest = not_after(datetime.now(UTC))
        decoders, max_bytes, merger = self.decoders, self.max_message_bytes, self.merger
        self.counters.events_in += len(messages)
        for message in messages:
            topic, partition, offset = message.topic, message.partition, message.offset
            try:
                event = decode(decoders[topic], message.value, message.key, max_bytes, latest)
            except DecodeError as exc:
                merger.push(undecodable(topic, partition, offset, message, exc))
                continue
            merger.push(Pending(merge_key(event), topic, partition, offset, event, message))

    async def _process(self, released: list[Pending]) -> None:
        if not released:
            return
        self.batch_timer.start(len(released))
        try:
            await self._settle(released)
        finally:
            self.batch_timer.stop()

    async def _settle(self, released: list[Pending]) -> None:
        self._follow_model()
        ready = [item for item in released if item.error is None]
        bad = [(item.handle, item.error) for item in released if item.error is not None]
        if bad:
            letters = await self.dead_letters.write(bad)
            self.counters.dead_letters += letters.written
            self.counters.skipped += letters.skipped
        try:
            outcome = apply_batch(self.detector, self.table.get, ready, self.cache)
            await self._send_examples(outcome.examples)
            await self.delivery.deliver(outcome.alerts, outcome.feedback)
            await self.changelog.write(outcome.writes)
        except BaseException:
            self.cache.clear()  # states changed in place may not have been written: forget them
            self.lane.untrack([item.handle for item in released])  # unacked: redelivered
            raise
        for item in released:
            self._ack(item.handle)
        self._count(outcome)
        self._advance_event_time(ready)
        for alert in outcome.alerts:
            log.info(
                "alert_emitted",
                customer_id=alert.customer_id,
                kind=alert.kind.value,
                risk_level=alert.level.label,
                score=round(alert.score, 3),
                alert_id=alert.alert_id,
                trigger=alert.trigger.event_id,
            )

    def _advance_event_time(self, ready: list[Pending]) -> None:
        """Feedback is stamped by people and moves no clock: only the banks' events count."""
        latest = max(
            (item.event.ts for item in ready if not isinstance(item.event, Feedback)), default=None
        )
        if latest is not None and (self._event_time is None or latest > self._event_time):
            self._event_time = latest

    def _count(self, outcome: BatchResult) -> None:
        c = self.counters
        c.applied += outcome.applied
        c.skipped += outcome.skipped
        c.alerts += len(outcome.alerts)
        for alert in outcome.alerts:
            key = (alert.level.label, alert.kind.value)
            self.alerts_by[key] = self.alerts_by.get(key, 0) + 1
        c.examples += len(outcome.examples)
        c.human_labels += sum(1 for _, example in outcome.examples if example.human)
        c.feedback += len(outcome.feedback)
        c.ticks += outcome.ticks
        c.expired += outcome.expired

    def _let_go(self) -> None:
        """A rebalance stopped the flow: hold nothing back. Faust waits for every tracked
        message to be acked before it gives partitions away, and the merge may be holding
        events for data that will not be fetched now; drop them, unacked and untracked (they
        are redelivered from the committed offsets to whoever owns their partition next)."""
        dropped = [item.handle for item in self.merger.forget_all()]
        if dropped:
            self.lane.untrack(dropped)
            log.info("rebalance_let_go", dropped=len(dropped))

    def revoked(self, partitions: set[int]) -> None:
        """Partitions moved to another worker: drop what is buffered for them, unacked, so the
        new owner applies it (at least once, and idempotently)."""
        dropped = self.merger.forget(partitions)
        cleared = self.lane.clear()
        self.cache.clear()
        if self.watchdog is not None:
            self.watchdog.forget(partitions)
        if dropped or cleared:
            log.info(
                "partitions_revoked",
                partitions=sorted(partitions),
                dropped=len(dropped),
                queued_dropped=cleared,
            )

    def _ack(self, message: Any) -> None:
        self.lane.ack(message)
        if self.watchdog is not None:
            self.watchdog.acked((message.topic, message.partition), message.offset)

    def _follow_model(self) -> None:
        """Between batches, switch to the newest parameters the trainer published."""
        if self.model_source is None:
            return
        raw = self.model_source()
        if raw is None or raw == self._model_raw:
            return
        self._model_raw = raw
        try:
            params = ModelParams.from_json(raw)
        except ValueError as exc:
            log.error("model_params_rejected", error=str(exc)[:200])
            return
        self.detector.use_model(ParamScorer(params))
        log.info("model_in_use", version=params.version, weight=self.detector.model_weight)

    async def _send_examples(self, examples: list[tuple[str, LabelledExample]]) -> None:
        """A batch's matured examples to the training topic in bulk, keyed by customer and
        partitioned as a keyed send would be; delivered before the commit, like the changelog."""
        if not examples:
            return
        producer = self.table.app.producer._ensure_producer()
        topic = self.training_topic.get_topic_name()
        partitions = sorted(await producer.partitions_for(topic))
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for customer_id, example in examples:
            key = customer_id.encode()
            value = orjson.dumps({**example.to_dict(), "customer_id": customer_id})
            partition = _PARTITIONER(key, partitions, partitions)
            by_partition.setdefault(partition, []).append((key, value))
        for partition, records in by_partition.items():
            await produce_batches(producer, topic, partition, records)


async def _refuse(stream: Any) -> None:
    """Iterate the agent's stream so that Faust subscribes the input topics; the lane takes
    every input message first, so one arriving here means it is not installed: stop loudly
    rather than ack what nothing processed."""
    async for _ in stream:
        raise RuntimeError("an input message reached the Faust stream: the fast lane is off")
