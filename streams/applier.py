"""Apply released events, and the event-time sweep they drive, to state in a key-value store.

The live agent (store: the Faust table) and the offline replay (store: a dict) both call
:func:`apply_batch`, so they take the same decisions in the same order.

**The sweep.** A customer who sends nothing still moves in event time: an instalment falls
overdue, an expected salary does not come, a held label matures, an idle customer expires. Each
partition has a clock, the UTC day of the latest event applied in it. When an event moves the
clock to a later day, every day passed is swept, oldest first: each customer on that day's agenda
is ticked at the day's midnight (:meth:`RiskDetector.tick`), unless they have sent an event
since. After every event and tick the customer is put on the agenda for the day of their next
:meth:`RiskDetector.wake_at` (a customer whose wake day moved is skipped on the old day).
Alerts from a sweep name the trigger ``sweep:{partition}:{date}``. Because the clock is the
partition's own event time, a replay sweeps at exactly the points the live run did. Feedback
(a person's answer) never moves the clock, and for a customer with no state it is only recorded
for the audit trail: an answer is not evidence about the customer.

Keys in the store (all in the customer's partition): the customer id for its state; a day's
agenda as chunks, ``\\x00agenda:{partition}:{day}`` holding how many and
``\\x00agenda:{partition}:{day}:{n}`` the JSON list of customer ids one batch added (a batch
writes only what it adds: rewriting a whole day's list, which at a million customers holds
hundreds of thousands of ids, on every batch cost more than the detectors); and
``\\x00sweep:{partition}`` for the last day swept. :attr:`BatchResult.writes` lists states,
then agendas (a chunk before its count), then sweep markers, each anchored to a message of its
partition, so they reach the changelog in that order: a crash that persists only a prefix never
leaves a sweep marked done without the states it changed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from detectors.alert import Alert, Trigger
from detectors.engine import Applied, RiskDetector
from detectors.events import Feedback, Source
from detectors.labels import LabelledExample
from detectors.levels import DAY_MS
from detectors.state import CustomerState
from streams.merge import Pending

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY = timedelta(days=1)
_MS = timedelta(milliseconds=1)
SWEEP_TOPIC = "sweep"  # the trigger topic named by alerts that a sweep raised


@dataclass(frozen=True, slots=True)
class Write:
    """One store write; ``value`` None deletes. ``anchor`` is a message of the key's partition
    (the live table writes to that changelog partition), None in a replay."""

    key: bytes
    value: bytes | None
    anchor: Any


@dataclass(slots=True)
class BatchResult:
    alerts: list[Alert] = field(default_factory=list)
    examples: list[tuple[str, LabelledExample]] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)  # applied answers, for the audit
    writes: list[Write] = field(default_factory=list)
    applied: int = 0
    skipped: int = 0
    ticks: int = 0
    expired: int = 0


def agenda_key(partition: int, day: int) -> bytes:
    """The number of chunks a day's agenda has (the chunks are :func:`agenda_chunk_key`)."""
    return f"\x00agenda:{partition}:{day}".encode()


def agenda_chunk_key(partition: int, day: int, chunk: int) -> bytes:
    return f"\x00agenda:{partition}:{day}:{chunk}".encode()


def sweep_key(partition: int) -> bytes:
    return f"\x00sweep:{partition}".encode()


def is_customer_key(key: bytes) -> bool:
    return not key.startswith(b"\x00")


class StateCache:
    """Decoded states of recently seen customers, least recently used out first, so that a
    customer's next batch skips decoding. It must hold exactly what the store holds (the worker
    is the only writer of its partitions), so the caller clears it whenever that may not be so:
    partitions revoked, or a batch that failed before its writes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._states: OrderedDict[str, CustomerState] = OrderedDict()

    def get(self, customer_id: str) -> CustomerState | None:
        state = self._states.get(customer_id)
        if state is not None:
            self._states.move_to_end(customer_id)
        return state

    def put(self, customer_id: str, state: CustomerState | None) -> None:
        if state is None:
            self._states.pop(customer_id, None)
            return
        self._states[customer_id] = state
        self._states.move_to_end(customer_id)
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)

    def clear(self) -> None:
        self._states.clear()


Trace = Callable[[str, datetime, float], None]
"""Hears ``(customer_id, scored_at, score)`` after every event applied and every sweep visit."""


def apply_batch(
    detector: RiskDetector,
    get: Callable[[bytes], bytes | None],
    ready: Sequence[Pending],
    cache: StateCache | None = None,
    trace: Trace | None = None,
) -> BatchResult:
    """Apply ``ready`` (merge order) with the sweeps it drives; ``get`` reads the store. The
    states in ``cache`` are used, changed in place and kept, so a failed batch must clear it.
    ``trace``, when given, hears every customer's new score with the time it was scored at."""
    batch = _Batch(detector, get, cache, trace)
    for item in ready:
        batch.event(item)
    return batch.finish()


def day_of(ts: datetime) -> int:
    return (ts - EPOCH) // _DAY


def wake_day(wake: datetime) -> int:
    """The first sweep day (midnight) at or after ``wake``."""
    return -(-((wake - EPOCH) // _MS) // DAY_MS)


class _Batch:
    """Caches what one batch reads and changes; :meth:`finish` turns it into writes."""

    def __init__(
        self,
        detector: RiskDetector,
        get: Callable[[bytes], bytes | None],
        cache: StateCache | None,
        trace: Trace | None = None,
    ) -> None:
        self.detector = detector
        self.get = get
        self.cache = cache
        self.trace = trace
        self.out = BatchResult()
        self.states: dict[str, CustomerState | None] = {}  # None: absent or expired
        self.changed: dict[str, Any] = {}  # customer id -> anchor, in first-change order
        self.chunks: dict[tuple[int, int], int] = {}  # chunks stored per (partition, day)
        self.added: dict[tuple[int, int], list[str]] = {}  # ids this batch put on a day
        self.cleared: dict[tuple[int, int], int] = {}  # days swept: their chunks to delete
        self.changed_agendas: dict[tuple[int, int], Any] = {}
        self.swept: dict[int, int | None] = {}
        self.changed_sweeps: dict[int, Any] = {}

    def event(self, item: Pending) -> None:
        customer_id = item.event.customer_id
        if isinstance(item.event, Feedback):
            state = self._state(customer_id)
            if state is None:
                self.out.applied += 1
                self.out.feedback.append(item.event)
                return
        else:
            self._advance(item.partition, day_of(item.event.ts), item.handle)
            state = self._state(customer_id) or self.detector.new_state(customer_id)
        applied = self.detector.apply(
            state, item.event, Source(item.topic, item.partition, item.offset)
        )
        if applied.skipped:
            self.out.skipped += 1
            return
        self.out.applied += 1
        self._collect(customer_id, applied)
        if self.trace is not None:
            self.trace(customer_id, item.event.ts, state.score)
        self._keep(state, item.partition, state.watermark, item.handle)

    def finish(self) -> BatchResult:
        writes = self.out.writes
        for customer_id, anchor in self.changed.items():
            state = self.states[customer_id]
            writes.append(Write(customer_id.encode(), state.encode() if state else None, anchor))
            if self.cache is not None:
                self.cache.put(customer_id, state)
        for (partition, day), anchor in self.changed_agendas.items():
            writes.extend(self._agenda_writes(partition, day, anchor))
        for partition, anchor in self.changed_sweeps.items():
            writes.append(Write(sweep_key(partition), str(self.swept[partition]).encode(), anchor))
        return self.out

    def _advance(self, partition: int, day: int, anchor: Any) -> None:
        """Move the partition's clock to ``day``, sweeping every day it passes."""
        last = self._last_swept(partition)
        if last is not None and day <= last:
            return
        if last is not None:
            for swept_day in range(last + 1, day + 1):
                self._sweep(partition, swept_day, anchor)
        self.swept[partition] = day
        self.changed_sweeps[partition] = anchor

    def _sweep(self, partition: int, day: int, anchor: Any) -> None:
        ids = self._agenda(partition, day)
        if not ids:
            return
        now = EPOCH + timedelta(days=day)
        trigger = Trigger(f"sweep:{partition}:{now.date().isoformat()}", SWEEP_TOPIC, partition, -1)
        for customer_id in dict.fromkeys(ids):
            state = self._state(customer_id)
            if state is None or state.wake_day != day:
                continue  # forgotten, or rescheduled since it was put on this day
            applied = self.detector.tick(state, now, trigger)
            if applied.skipped:  # it sent an event at or after this midnight
                self._keep(state, partition, state.watermark, anchor)
                continue
            self.out.ticks += 1
            self._collect(customer_id, applied)
            if self.trace is not None:
                self.trace(customer_id, now, state.score)
            if applied.expired:
                self.out.expired += 1
                self.states[customer_id] = None
                self.changed.setdefault(customer_id, anchor)
            else:
                self._keep(state, partition, now, anchor)
        self.cleared[(partition, day)] = self._chunks(partition, day)
        self.chunks[(partition, day)] = 0
        self.added.pop((partition, day), None)
        self.changed_agendas[(partition, day)] = anchor

    def _keep(self, state: CustomerState, partition: int, now: datetime, anchor: Any) -> None:
        """Record the changed state and put the customer on the agenda for their wake day."""
        customer_id = state.customer_id
        self.states[customer_id] = state
        self.changed.setdefault(customer_id, anchor)
        day = wake_day(self.detector.wake_at(state, now))
        last = self.swept.get(partition)
        if last is not None:
            day = max(day, last + 1)
        if day == state.wake_day:
            return
        state.wake_day = day
        self.added.setdefault((partition, day), []).append(customer_id)
        self.changed_agendas[(partition, day)] = anchor

    def _collect(self, customer_id: str, applied: Applied) -> None:
        if applied.feedback is not None:
            self.out.feedback.append(applied.feedback)
        self.out.alerts.extend(applied.alerts)
        self.out.examples.extend((customer_id, example) for example in applied.examples)

    def _state(self, customer_id: str) -> CustomerState | None:
        if customer_id not in self.states:
            state = self.cache.get(customer_id) if self.cache is not None else None
            if state is None:
                raw = self.get(customer_id.encode())
                state = None if raw is None else self.detector.decode_state(raw)
            self.states[customer_id] = state
        return self.states[customer_id]

    def _agenda(self, partition: int, day: int) -> list[str]:
        """Everyone put on the day: the stored chunks, then what this batch added."""
        ids: list[str] = []
        for chunk in range(self._chunks(partition, day)):
            raw = self.get(agenda_chunk_key(partition, day, chunk))
            ids.extend(orjson.loads(raw) if raw else [])
        return ids + self.added.get((partition, day), [])

    def _chunks(self, partition: int, day: int) -> int:
        """How many chunks the day has in the store."""
        key = (partition, day)
        if key not in self.chunks:
            raw = self.get(agenda_key(partition, day))
            self.chunks[key] = 0 if raw is None else int(raw)
        return self.chunks[key]

    def _agenda_writes(self, partition: int, day: int, anchor: Any) -> list[Write]:
        """A new chunk with this batch's ids, then the count; or, for a swept day, deletes."""
        if (partition, day) in self.cleared:  # swept: every chunk it had, then the count
            keys = [
                agenda_chunk_key(partition, day, n) for n in range(self.cleared[(partition, day)])
            ]
            return [Write(key, None, anchor) for key in [*keys, agenda_key(partition, day)]]
        added = self.added.get((partition, day))
        if not added:
            return []
        count = self._chunks(partition, day)
        return [
            Write(agenda_chunk_key(partition, day, count), orjson.dumps(added), anchor),
            Write(agenda_key(partition, day), str(count + 1).encode(), anchor),
        ]

    def _last_swept(self, partition: int) -> int | None:
        if partition not in self.swept:
            raw = self.get(sweep_key(partition))
            self.swept[partition] = None if raw is None else int(raw)
        return self.swept[partition]
