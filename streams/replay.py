"""Offline replay: the very same decode, merge and detector code over recorded messages.

Messages are placed as Kafka's default partitioner places them (murmur2 of the key), numbered per
partition in production order, and merged per partition with every topic buffered, which is the
order a live worker applies them in. The result is the alerts the live system would emit.

Input is read in windows of ``window`` messages, so a recording of millions of events replays in
bounded memory. Within a window the merge is exact; across windows each partition's events must
come in event-time order (what ``ews simulate`` and ``ews datasets`` write): an event that would
have to go before one already applied raises :class:`ReplayOrderError` rather than reorder silently.

Each window's events are applied interleaved across partitions by event time, as a live worker
receives them. With a :class:`Learner` the replay also trains the online model the way the
trainer agent does: matured examples are scored with the current published model (prequential:
before it learns them), learned in order, and every ``publish_every`` labels a new version reaches
the detector between batches. Those are deterministic points, so the same input gives the same
alerts, and a version never holds a label that matured after the events it scores.
"""

from __future__ import annotations

import base64
import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka.partitioner import murmur2

from config.settings import Topics
from detectors.alert import Alert
from detectors.engine import RiskDetector
from detectors.labels import LabelledExample
from detectors.model import OnlineRiskModel, ParamScorer
from detectors.state import CustomerState
from streams.applier import BatchResult, StateCache, Trace, apply_batch, is_customer_key
from streams.merge import EventTimeMerger, Pending, SortKey, merge_key
from streams.records import DecodeError, Decoder, decode, not_after

STREAMS = ("transactions", "repayments", "outcomes", "feedback")
"""The ``stream`` names of a recording, one per input topic."""
STREAM_RANK = {"outcomes": 0, "feedback": 1, "repayments": 2, "transactions": 3}
"""Ties in event time go in this order, as in :func:`streams.merge.merge_key`."""


@dataclass(frozen=True, slots=True)
class Recorded:
    topic: str
    key: bytes | None
    value: bytes


class ReplayOrderError(ValueError):
    """The recording is not in event-time order per partition; sort it before replaying."""


@dataclass(frozen=True, slots=True)
class Scored:
    """A matured example as the learner saw it: the live score before learning, the label."""

    customer_id: str
    matured_ts: datetime
    probability: float
    label: bool


class Learner:
    """The trainer agent's loop, in process: score each example, learn it, publish every N."""

    def __init__(self, detector: RiskDetector, publish_every: int = 200) -> None:
        if publish_every < 1:
            raise ValueError("publish_every must be at least 1")
        self.detector = detector
        self.publish_every = publish_every
        self.model = OnlineRiskModel(steps=detector.rules.model.steps)
        self.scored: list[Scored] = []

    def learn(self, examples: Iterable[tuple[str, LabelledExample]]) -> None:
        for customer_id, example in examples:
            probability = self.detector.probability(example.features)
            self.scored.append(Scored(customer_id, example.matured_ts, probability, example.label))
            self.model.learn_one(example.features, example.label, human=example.human)
            if self.model.n_labels % self.publish_every == 0:
                version = f"lr-{self.model.n_labels}"
                self.detector.use_model(ParamScorer(self.model.params(version)))


@dataclass(slots=True)
class ReplayResult:
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[tuple[Recorded, DecodeError]] = field(default_factory=list)
    states: dict[str, CustomerState] = field(default_factory=dict)
    examples: list[tuple[str, LabelledExample]] = field(default_factory=list)
    messages: int = 0
    applied: int = 0
    ticks: int = 0
    expired: int = 0


def default_partition(key: bytes | None, partitions: int, index: int) -> int:
    """Kafka's default partitioner for keyed messages (murmur2, positive, modulo)."""
    if key is None:
        return index % partitions
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def replay(
    messages: Iterable[Recorded],
    decoders: dict[str, Decoder],
    detector: RiskDetector,
    partitions: int,
    max_message_bytes: int = 64 * 1024,
    chunk: int = 500,
    cache_customers: int = 50_000,
    *,
    window: int = 100_000,
    learner: Learner | None = None,
    trace: Trace | None = None,
    progress: Callable[[int], None] | None = None,
    keep: bool = True,
) -> ReplayResult:
    """Replay ``messages``; the batch size ``chunk`` and the state cache (``cache_customers``,
    0 for none) must not change any decision. ``keep=False`` keeps neither the final states nor
    the examples (a long replay's memory); ``progress`` hears the messages read so far."""
    result = ReplayResult()
    run = _Run(detector, decoders, partitions, max_message_bytes, chunk, cache_customers)
    latest = not_after(datetime.now(UTC))
    for index, message in enumerate(messages):
        run.read(index, message, latest, result)
        if (index + 1) % window == 0:
            run.apply(result, learner, trace, keep)
            if progress is not None:
                progress(index + 1)
    run.apply(result, learner, trace, keep)
    if progress is not None:
        progress(result.messages)
    if keep:
        result.states = {
            key.decode(): detector.decode_state(value)
            for key, value in run.store.items()
            if is_customer_key(key)
        }
    return result


class _Run:
    """One replay's merge buffer, store and per-partition order check."""

    def __init__(
        self,
        detector: RiskDetector,
        decoders: dict[str, Decoder],
        partitions: int,
        max_message_bytes: int,
        chunk: int,
        cache_customers: int,
    ) -> None:
        self.detector = detector
        self.decoders = decoders
        self.partitions = partitions
        self.max_message_bytes = max_message_bytes
        self.chunk = chunk
        self.merger = EventTimeMerger(
            list(decoders), highwater=lambda tp: 0, clock=lambda: 0.0, idle_s=0.0, max_wait_s=0.0
        )
        self.next_offset: dict[tuple[str, int], int] = {}
        self.released: dict[int, SortKey] = {}
        self.store: dict[bytes, bytes] = {}
        self.cache = StateCache(cache_customers)

    def read(self, index: int, message: Recorded, latest: datetime, result: ReplayResult) -> None:
        result.messages += 1
        partition = default_partition(message.key, self.partitions, index)
        offset = self.next_offset.get((message.topic, partition), 0)
        self.next_offset[(message.topic, partition)] = offset + 1
        try:
            event = decode(
                self.decoders[message.topic],
                message.value,
                message.key,
                self.max_message_bytes,
                latest,
            )
        except DecodeError as exc:
            result.dead_letters.append((message, exc))
            return
        self.merger.push(Pending(merge_key(event), message.topic, partition, offset, event, None))

    def apply(
        self, result: ReplayResult, learner: Learner | None, trace: Trace | None, keep: bool
    ) -> None:
        ready = _interleave(self.merger.pop_ready())
        self._check_order(ready)
        for start in range(0, len(ready), self.chunk):
            outcome = apply_batch(
                self.detector, self.store.get, ready[start : start + self.chunk], self.cache, trace
            )
            self._store(outcome)
            result.applied += outcome.applied
            result.ticks += outcome.ticks
            result.expired += outcome.expired
            result.alerts.extend(outcome.alerts)
            if keep:
                result.examples.extend(outcome.examples)
            if learner is not None:
                learner.learn(outcome.examples)

    def _check_order(self, ready: list[Pending]) -> None:
        for item in ready:
            last = self.released.get(item.partition)
            if last is not None and item.sort_key < last:
                raise ReplayOrderError(
                    f"event {item.event.event_id} ({item.event.ts.isoformat()}) comes after "
                    f"{last[2]} ({last[0].isoformat()}) in partition {item.partition}: "
                    "a recording longer than one window must be in event-time order"
                )
            self.released[item.partition] = item.sort_key

    def _store(self, outcome: BatchResult) -> None:
        for write in outcome.writes:
            if write.value is None:
                self.store.pop(write.key, None)
            else:
                self.store[write.key] = write.value


def _interleave(ready: list[Pending]) -> list[Pending]:
    """The merger releases partition after partition; apply them interleaved by event time, as
    a live worker's fetches do, so that what the learner learns from one partition can only
    reach events of another that come later in event time (no look-ahead in a backtest). Each
    partition's own order is kept exactly."""
    by_partition: dict[int, list[Pending]] = {}
    for item in ready:
        by_partition.setdefault(item.partition, []).append(item)
    return list(heapq.merge(*by_partition.values(), key=lambda item: item.sort_key))


# --------------------------------------------------------------------------- recordings


def read_recording(path: str | Path, topics: Topics) -> Iterator[Recorded]:
    """Messages of a recording: JSON lines with ``stream`` (one of :data:`STREAMS`), ``key`` and
    ``value`` (the message text) or ``value_b64``; other fields are ignored."""
    names = {stream: getattr(topics, stream) for stream in STREAMS}
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                topic = names[record["stream"]]
                key = record.get("key")
                value = (
                    record["value"].encode()
                    if "value" in record
                    else base64.b64decode(record["value_b64"])
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: not a recorded message: {exc!r}") from None
            yield Recorded(topic, None if key is None else str(key).encode(), value)
