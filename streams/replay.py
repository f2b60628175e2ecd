"""Offline replay: the very same decode, merge and detector code over recorded messages.

Messages are placed as Kafka's default partitioner places them (murmur2 of the key), numbered per
partition in production order, and merged per partition with every topic fully buffered, which
is the order a live worker applies them in. The result is the alerts the live system would emit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka.partitioner import murmur2

from detectors.alert import Alert
from detectors.engine import RiskDetector
from detectors.labels import LabelledExample
from detectors.state import CustomerState
from streams.applier import StateCache, apply_batch, is_customer_key
from streams.merge import EventTimeMerger, Pending, merge_key
from streams.records import DecodeError, Decoder, decode, not_after


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
) -> ReplayResult:
    """Replay ``messages``; the batch size ``chunk`` and the state cache (``cache_customers``,
    0 for none) must not change any decision."""
    result = ReplayResult()
    merger = EventTimeMerger(
        list(decoders), highwater=lambda tp: 0, clock=lambda: 0.0, idle_s=0.0, max_wait_s=0.0
    )
    next_offset: dict[tuple[str, int], int] = {}
    latest = not_after(datetime.now(UTC))
    for index, message in enumerate(messages):
        partition = default_partition(message.key, partitions, index)
        offset = next_offset.get((message.topic, partition), 0)
        next_offset[(message.topic, partition)] = offset + 1
        try:
            event = decode(
                decoders[message.topic], message.value, message.key, max_message_bytes, latest
            )
        except DecodeError as exc:
            result.dead_letters.append((message, exc))
            continue
        merger.push(Pending(merge_key(event), message.topic, partition, offset, event, None))
    store: dict[bytes, bytes] = {}
    cache = StateCache(cache_customers)
    ready = merger.pop_ready()
    for start in range(0, len(ready), chunk):
        outcome = apply_batch(detector, store.get, ready[start : start + chunk], cache)
        for write in outcome.writes:
            if write.value is None:
                store.pop(write.key, None)
            else:
                store[write.key] = write.value
        result.applied += outcome.applied
        result.ticks += outcome.ticks
        result.expired += outcome.expired
        result.alerts.extend(outcome.alerts)
        result.examples.extend(outcome.examples)
    result.states = {
        key.decode(): detector.decode_state(value)
        for key, value in store.items()
        if is_customer_key(key)
    }
    return result
