"""A fix for Faust's offset bookkeeping, installed once when the app is built.

Faust keeps, per partition, a list of acked offsets and commits the first run of consecutive
numbers in it (``Consumer._new_offset``). A message delivered twice (as Faust does around
recovery and rebalances, faust-streaming issue 216) can be acked twice, and a duplicate that
lands after its offset left the index stays in the list (robinhood/faust issue 559). With
duplicates the runs are one offset long, so each commit advances one offset: a restarted worker
then takes hours to commit what it processed in seconds, and a crash replays all of it.

The fix: before Faust computes the offset to commit, drop offsets below the committed one and
duplicates. Every offset still has to be acked before it is committed, so no guarantee changes.

A second fix closes the head of the partition. Faust refuses to commit while an offset at the head
is unacked only when ``min(acked) - committed > 1`` and ``committed`` is truthy: one unacked offset
right at the committed one, any at offset 0, and any before the first commit are committed past.
That is how a message in flight when the agent crashed (Faust restarts the agent and acks what
follows) was lost without a trace. Here the head is the committed offset, or, before the first
commit, the first offset read since the partition was assigned (``FIRST_READ``, kept by
``streams.lane``); nothing is committed while an offset between it and the lowest ack is neither
acked nor a recorded gap. Such a stall is what ``streams.watchdog`` re-seeks.

A third fix makes "seek to the committed offsets" rewind every partition Faust commits. Faust
drops fetched messages it will not deliver (flow stopped for a rebalance, partition paused; and
while every partition is paused its live set of active partitions is empty, which aiokafka's
``fetched_records`` takes as "all partitions", so a whole fetch is dropped), having already moved
the consumer's position past them; it counts on ``Consumer.perform_seek`` to rewind afterwards.
aiokafka's ``seek_to_committed`` seeks only where the committed offset is above 0 (aiokafka issue
1003), so a partition with nothing committed kept its advanced position: the new owner of a
partition never read its first messages, acked nothing there, and never committed it. Here a
partition of an acked (non-changelog) topic with nothing committed goes back to where a new
consumer starts (``consumer_auto_offset_reset``), one committed at 0 to offset 0. Changelog
partitions are left as before: Faust positions them itself during recovery.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

_original_new_offset = Consumer._new_offset


#: attribute of the consumer: ``{tp: first offset read since the partition was assigned}``
FIRST_READ = "_ews_first_read"


def _new_offset_without_duplicates(self: Any, tp: Any) -> int | None:
    acked = self._acked[tp]
    if acked:
        committed = self._committed_offset[tp]
        acked[:] = sorted({o for o in acked if committed is None or o >= committed})
        head = committed if committed is not None else getattr(self, FIRST_READ, {}).get(tp)
        if head is not None and acked and acked[0] > head:  # noqa: SIM102 - reads as two steps
            if not _covered(self._gap[tp], head, acked[0]):
                return None  # an offset at the head was never acked
    result: int | None = _original_new_offset(self, tp)
    return result


def first_read(consumer: Any, tp: Any) -> int | None:
    """The first offset read from ``tp`` since it was assigned (None before any read)."""
    offsets: dict[Any, int] = getattr(consumer, FIRST_READ, {})
    return offsets.get(tp)


def _covered(gap: Any, start: int, end: int) -> bool:
    """True if the intervals of ``gap`` cover every offset from ``start`` to ``end - 1``."""
    at = start
    for interval in sorted(gap.overlap(start, end), key=lambda i: i.begin):
        if interval.begin > at:
            return False
        at = max(at, interval.end)
    return at >= end


async def _seek_to_committed_or_start(self: Any) -> Mapping[Any, int | None]:
    """``AIOKafkaConsumerThread.seek_to_committed`` that also rewinds, in the consumer's thread,
    the acked partitions aiokafka leaves alone (nothing committed, or committed at 0)."""
    consumer = self._ensure_consumer()
    app = self.app
    acked_topics = {t for t in consumer.subscription() if app.topics.acks_enabled_for(t)} - set(
        app.tables.changelog_topics
    )
    latest = str(app.conf.consumer_auto_offset_reset).lower() == "latest"
    result: Mapping[Any, int | None] = await self.call_thread(
        rewind_to_committed, consumer, acked_topics, latest
    )
    return result


async def rewind_to_committed(
    consumer: Any, acked_topics: Collection[str], latest: bool = False
) -> dict[Any, int | None]:
    """Seek every assigned partition to its committed offset (aiokafka's own seek), and the
    partitions of ``acked_topics`` it skips to 0 (committed at 0) or to where a new consumer
    starts (nothing committed: the earliest offset, the latest if ``latest``). Returns the
    committed offsets, as ``seek_to_committed`` does."""
    committed: dict[Any, int | None] = dict(await consumer.seek_to_committed())
    fresh = []
    for tp, offset in committed.items():
        if tp.topic not in acked_topics or (offset is not None and offset > 0):
            continue
        if offset == 0:
            consumer.seek(tp, 0)
        else:
            fresh.append(tp)
    if fresh:
        await (consumer.seek_to_end if latest else consumer.seek_to_beginning)(*fresh)
    return committed


def install() -> None:
    """Idempotent: patch ``Consumer._new_offset`` and ``AIOKafkaConsumerThread.seek_to_committed``
    once per process."""
    if Consumer._new_offset is not _new_offset_without_duplicates:
        Consumer._new_offset = _new_offset_without_duplicates  # type: ignore[method-assign]
    if AIOKafkaConsumerThread.seek_to_committed is not _seek_to_committed_or_start:
        AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed_or_start  # type: ignore[method-assign,assignment]
