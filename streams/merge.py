"""Event-time merge of a partition group's input topics, as Kafka Streams does it.

One customer's events arrive on several topics, so the order in which a worker fetches them is an
accident. Each topic partition is buffered first in, first out (offset order is never changed);
within each partition the merger releases the head with the smallest
``(event time, topic rank, event_id)``; it holds events while another input topic of the same
partition has nothing buffered, for as long as that topic is known to have more data on the broker
(up to ``max_wait_s``) or, when it is caught up, for ``idle_s``. With every topic buffered the
order is exact, so the live worker applies events in the order a replay does.

A message that failed to decode goes through the buffer too (:func:`undecodable`): it has no
event time, so it leaves as soon as it is at the head of its topic partition, never before an
earlier message of it. The worker acks what leaves, so its acks stay in offset order per topic
partition, which Faust's commit needs: it commits up to the first run of acked offsets, whatever
lies before it.

Pure apart from the callables it is given: the clock (monotonic seconds), the consumer's
highwater for a topic partition and, optionally, the group's committed offset for it (where reading
starts again after an assignment or a let-go: a topic partition committed up to its highwater has
nothing more to wait for, though nothing was read from it since).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from detectors.events import Event, Feedback, Outcome, Repayment

TopicPartition = tuple[str, int]
SortKey = tuple[datetime, int, str]
UNDECODABLE: SortKey = (datetime.min.replace(tzinfo=UTC), -1, "")
"""Before every event: an undecodable message leaves once it heads its topic partition."""


RANKS: dict[type, int] = {Outcome: 0, Feedback: 1, Repayment: 2}
"""Ties in event time: outcome < feedback < repayment < transaction (the rest)."""


def merge_key(event: Event) -> SortKey:
    """Event time, then outcome < feedback < repayment < transaction, then ``event_id``."""
    return (event.ts, RANKS.get(type(event), 3), event.event_id)


@dataclass(slots=True)
class Pending:
    """A message waiting in the merge buffer: a decoded ``event``, or (``event`` None) one that
    failed to decode with its ``error``. ``handle`` is the broker message to ack."""

    sort_key: SortKey
    topic: str
    partition: int
    offset: int
    event: Any
    handle: Any
    error: Any = None


def undecodable(topic: str, partition: int, offset: int, handle: Any, error: Any) -> Pending:
    return Pending(UNDECODABLE, topic, partition, offset, None, handle, error)


class EventTimeMerger:
    def __init__(
        self,
        topics: Sequence[str],
        highwater: Callable[[TopicPartition], int | None],
        clock: Callable[[], float],
        idle_s: float = 0.2,
        max_wait_s: float = 30.0,
        committed: Callable[[TopicPartition], int | None] = lambda tp: None,
    ) -> None:
        self.topics = tuple(topics)
        self.highwater = highwater
        self.committed = committed
        self.clock = clock
        self.idle_s = idle_s
        self.max_wait_s = max_wait_s
        self._buffers: dict[TopicPartition, deque[Pending]] = {}
        self._last_offset: dict[TopicPartition, int] = {}
        self._empty_since: dict[TopicPartition, float] = {}
        self._turn = 0
        self.gave_up = 0  # times the merge stopped waiting for data known to be on the broker
        self._given_up: set[TopicPartition] = set()

    def __len__(self) -> int:
        return sum(len(b) for b in self._buffers.values())

    def holds(self, tp: TopicPartition) -> bool:
        """True while messages of ``tp`` wait here."""
        return bool(self._buffers.get(tp))

    def seen(self, topic: str, partition: int, offset: int) -> None:
        """Record that a message was read (also for messages that failed to decode)."""
        tp = (topic, partition)
        self._last_offset[tp] = max(offset, self._last_offset.get(tp, -1))

    def push(self, item: Pending) -> None:
        tp = (item.topic, item.partition)
        last = self._last_offset.get(tp, -1)  # what seen() does, inline: once per message
        if item.offset > last:
            self._last_offset[tp] = item.offset
        buffer = self._buffers.get(tp)
        if buffer is None:
            buffer = self._buffers[tp] = deque()
        if not buffer:  # only an empty topic partition is waited for or given up on
            self._empty_since.pop(tp, None)
            self._given_up.discard(tp)
        buffer.append(item)

    def pop_ready(self, limit: int | None = None) -> list[Pending]:
        """Release what may go now, in merge order per partition: at most ``limit`` messages,
        the partitions taking turns to go first so that none waits behind the others."""
        now = self.clock()
        partitions = sorted({p for (_, p), buf in self._buffers.items() if buf})
        if partitions:
            first = self._turn % len(partitions)
            partitions = partitions[first:] + partitions[:first]
            self._turn += 1
        ready: list[Pending] = []
        for partition in partitions:
            budget = None if limit is None else limit - len(ready)
            if budget is not None and budget <= 0:
                break
            ready.extend(self._drain(partition, now, budget))
        return ready

    def forget_all(self) -> list[Pending]:
        """Drop every buffer (a rebalance is under way); their events will be redelivered."""
        return self.forget({p for _, p in self._buffers})

    def forget(self, partitions: set[int]) -> list[Pending]:
        """Drop the buffers of revoked partitions; their events will be redelivered."""
        dropped: list[Pending] = []
        for tp in [tp for tp in self._buffers if tp[1] in partitions]:
            dropped.extend(self._buffers.pop(tp))
        for tp in [tp for tp in self._last_offset if tp[1] in partitions]:
            del self._last_offset[tp]
        for tp in [tp for tp in self._empty_since if tp[1] in partitions]:
            del self._empty_since[tp]
        self._given_up = {tp for tp in self._given_up if tp[1] not in partitions}
        return dropped

    def _drain(self, partition: int, now: float, budget: int | None) -> list[Pending]:
        buffers = [self._buffers.setdefault((t, partition), deque()) for t in self.topics]
        out: list[Pending] = []
        may_skip: bool | None = None  # decided once for as long as the same topics stay empty
        while budget is None or len(out) < budget:
            heads = [b for b in buffers if b]
            if not heads:
                break
            if len(heads) < len(buffers):
                if may_skip is None:
                    may_skip = self._may_skip_empty(partition, now)
                if not may_skip:
                    break
            if len(heads) == 1:  # the only topic with anything: its run goes in offset order
                best = heads[0]
                take = len(best) if budget is None else min(len(best), budget - len(out))
                out.extend(best.popleft() for _ in range(take))
            else:
                best = min(heads, key=lambda b: b[0].sort_key)
                out.append(best.popleft())
            if not best:
                self._empty_since[(out[-1].topic, partition)] = now
                may_skip = None
        return out

    def _may_skip_empty(self, partition: int, now: float) -> bool:
        """True when every empty topic of the partition has been waited for long enough."""
        for topic in self.topics:
            tp = (topic, partition)
            if self._buffers.get(tp):
                continue
            since = self._empty_since.setdefault(tp, now)
            waited = now - since
            if self._more_on_broker(tp):
                if waited < self.max_wait_s:
                    return False
                if tp not in self._given_up:  # data known on the broker never came
                    self._given_up.add(tp)
                    self.gave_up += 1
            elif waited < self.idle_s:
                return False
        return True

    def _more_on_broker(self, tp: TopicPartition) -> bool:
        highwater = self.highwater(tp)
        if highwater is None:
            return True  # not fetched yet: assume data may be coming
        last = self._last_offset.get(tp)
        if last is None:  # nothing read since (re)assignment: reading starts at the commit
            return highwater > (self.committed(tp) or 0)
        return last + 1 < highwater
