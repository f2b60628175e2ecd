"""Offline replay: the very same decode, merge and detector code over recorded messages.

Messages are placed as Kafka's default partitioner places them (murmur2 of the key), numbered per
partition in production order, and merged per partition with every topic fully buffered, which
is the order a live worker applies them in. The result is the alerts the live system would emit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.partitioner import murmur2

from detectors.alert import Alert
from detectors.engine import RiskDetector
from detectors.events import Source
from detectors.labels import LabelledExample
from detectors.state import CustomerState
from streams.merge import EventTimeMerger, Pending, merge_key
from streams.records import DecodeError, Decoder, decode


@dataclass(frozen=True, slots=True)
class Recorded:
    topic: str
    key: bytes | None
    value: bytes


@dataclass(slots=True)
class ReplayResult:
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[tuple[Recorded, DecodeError]] = field(default_factory=list)
    states: dict[str, CustomerState] = field(default_factory=dict)
    examples: list[tuple[str, LabelledExample]] = field(default_factory=list)
    applied: int = 0


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
) -> ReplayResult:
    result = ReplayResult()
    merger = EventTimeMerger(
        list(decoders), highwater=lambda tp: 0, clock=lambda: 0.0, idle_s=0.0, max_wait_s=0.0
    )
    next_offset: dict[tuple[str, int], int] = {}
    for index, message in enumerate(messages):
        partition = default_partition(message.key, partitions, index)
        offset = next_offset.get((message.topic, partition), 0)
        next_offset[(message.topic, partition)] = offset + 1
        try:
            event = decode(decoders[message.topic], message.value, message.key, max_message_bytes)
        except DecodeError as exc:
            result.dead_letters.append((message, exc))
            continue
        merger.push(Pending(merge_key(event), message.topic, partition, offset, event, None))
    for item in merger.pop_ready():
        state = result.states.get(item.event.customer_id)
        if state is None:
            state = result.states[item.event.customer_id] = detector.new_state(
                item.event.customer_id
            )
        applied = detector.apply(state, item.event, Source(item.topic, item.partition, item.offset))
        result.applied += not applied.skipped
        result.alerts.extend(applied.alerts)
        result.examples.extend((item.event.customer_id, e) for e in applied.examples)
    return result
