"""The fast lane: each fetch of the input topics goes to the pipeline as one list of messages.

Stock Faust hands every message through the consumer's drain loop (a task pair and a wait per
message), the conductor, a channel queue, an ``Event`` and the stream's iteration before user code
sees it; a stock agent that only decodes is capped there (``ews bench``: faust-bare). The lane
replaces the drain loop (``Consumer._drain_messages``) in the worker process with one that keeps
Faust's offset checks and gap bookkeeping, passes messages of every other topic (training, the
model's global table) to Faust's own path as before, and puts the input topics' messages of one
fetch on a bounded queue as one list (backpressure: the fetch waits while the queue is full).

The pipeline takes queued lists, a batch's worth, with :meth:`FastLane.take`, which does what
Faust's stream does as an event is yielded: messages fetched before a rebalance (another
generation) or while flow is suspended are dropped, and the rest are tracked as pending acks.
Queued lists are not tracked, so :meth:`FastLane.clear` (on revocation, as Faust clears its
channel queues) drops them safely: after a rebalance Faust seeks every partition back to its
committed offset. Offsets, commits, tables, changelogs and rebalances stay Faust's; the pipeline
acks each message with ``Consumer.ack`` only after its sinks, and Faust commits what is acked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import structlog
from faust.transport.consumer import Consumer

from streams import faust_fixes

LANE_ATTRIBUTE = "_ews_fast_lane"

log = structlog.get_logger(__name__)
_original_drain = Consumer._drain_messages


class FastLane:
    def __init__(self, app: Any, topics: Iterable[str], max_batches: int = 8) -> None:
        self.app = app
        self.topics = frozenset(topics)
        self.queue: asyncio.Queue[list[Any]] = asyncio.Queue(maxsize=max_batches)

    def install(self) -> None:
        """Route this app's input topics through the lane (idempotent, per process)."""
        setattr(self.app, LANE_ATTRIBUTE, self)
        if Consumer._drain_messages is not _drain_with_lane:
            Consumer._drain_messages = _drain_with_lane  # type: ignore[method-assign]

    async def put(self, messages: list[Any]) -> None:
        await self.queue.put(messages)

    async def take(self, timeout_s: float, enough: int) -> list[Any]:
        """What was fetched, tracked as pending acks: the next list, and the lists queued
        behind it until there are ``enough`` messages (a pipeline that fell behind small
        fetches catches up in one batch, not a fetch a batch); empty after ``timeout_s``
        idle."""
        try:
            messages = await asyncio.wait_for(self.queue.get(), timeout_s)
        except TimeoutError:
            return []
        while len(messages) < enough and not self.queue.empty():
            messages += self.queue.get_nowait()
        app = self.app
        if not app.flow_control.is_active():
            _dropped("flow_stopped", messages)
            return []
        consumer = app.consumer
        generation = app.consumer_generation_id
        live = [m for m in messages if m.generation_id == generation]
        if len(live) < len(messages):
            _dropped("older_generation", [m for m in messages if m.generation_id != generation])
        for message in live:
            message.tracked = True
            consumer.track_message(message)
        # What a stream's event tells Faust's monitor; without it Faust logs every partition as
        # "Stream has not started processing" once its stream timeout (5 min) has passed.
        inbound = app.monitor.stream_inbound_time
        now = time.monotonic()
        for tp in {m.tp for m in live}:
            inbound[tp] = now
        return live

    def ack(self, message: Any) -> None:
        self.app.consumer.ack(message)

    def flowing(self) -> bool:
        """False while Faust has stopped the flow for a rebalance."""
        return bool(self.app.flow_control.is_active())

    def untrack(self, messages: list[Any]) -> None:
        """Stop tracking messages that will not be acked (dropped for a rebalance): Faust waits
        for every tracked message to be acked before it lets partitions go. Nothing is lost:
        unacked offsets are never committed, and after the rebalance Faust seeks every partition
        back to its committed offset."""
        unacked = self.app.consumer._unacked_messages
        for message in messages:
            unacked.discard(message)

    def clear(self) -> int:
        """Drop every queued list (none is tracked yet); returns how many messages."""
        dropped = 0
        while not self.queue.empty():
            dropped += len(self.queue.get_nowait())
        return dropped


def _dropped(reason: str, messages: list[Any]) -> None:
    """Say what a rebalance made the lane drop: Faust's seek to the committed offsets must
    bring it back, or its partition stalls."""
    spans: dict[str, list[int]] = {}
    for m in messages:
        span = spans.setdefault(f"{m.topic}:{m.partition}", [m.offset, m.offset])
        span[0], span[1] = min(span[0], m.offset), max(span[1], m.offset)
    log.info("lane_dropped", reason=reason, messages=len(messages), offsets=spans)


async def _drain_with_lane(self: Any, fetcher: Any) -> None:  # pragma: no cover - Faust's loop
    """``Consumer._drain_messages`` with the input topics batched to the lane (see module)."""
    lane: FastLane | None = getattr(self.app, LANE_ATTRIBUTE, None)
    if lane is None:
        await _original_drain(self, fetcher)
        return
    callback = self.callback
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    commit_every = self._commit_every
    to_message = self._to_message
    acks_enabled_for = self.app.topics.acks_enabled_for
    lane_topics = lane.topics
    first_read = getattr(self, faust_fixes.FIRST_READ, None)
    if first_read is None:
        first_read = {}
        setattr(self, faust_fixes.FIRST_READ, first_read)
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            await self.sleep(0)
            if self.should_stop:
                break
            batch: list[Any] = []
            async for tp, records in _fetch(self):
                read = get_read_offset(tp)
                lane_tp = tp.topic in lane_topics
                for record in records:
                    offset = record.offset
                    if read is None:  # first read since an assignment or a seek to the start
                        first_read[tp] = offset
                    elif offset < read:
                        continue  # already read (Faust drops these too)
                    if read and offset - read > 1 and acks_enabled_for(tp.topic):
                        await self._add_gap(tp, read + 1, offset)
                    read = offset
                    set_read_offset(tp, offset)
                    if lane_tp:
                        batch.append(to_message(tp, record))
                    else:
                        await self.wait_first(
                            callback(to_message(tp, record)), self.suspend_flow.wait()
                        )
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
            if batch:
                await lane.put(batch)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise


async def _fetch(self: Any) -> AsyncIterator[tuple[Any, list[Any]]]:
    """``Consumer.getmany`` a partition at a time: the same checks (flow, generation, active
    partitions, end offsets for the monitor), once per partition instead of once per record."""
    records, active = await self._wait_next_records(timeout=1.0)
    if records is None or self.should_stop:
        return
    if not self.flow_active:
        try:  # what getmany does when flow stopped: back to the committed offsets
            await self.perform_seek()
        except Exception as exc:
            self.log.warning(f"exception performing seek when flow not active {exc}")
        return
    generation = self.app.consumer_generation_id
    buffered = self._buffered_partitions
    monitor = self.app.monitor
    for tp, tp_records in records.items():
        if not self.flow_active or self.app.consumer_generation_id != generation:
            return
        if active is None or tp in active or tp in buffered:
            monitor.track_tp_end_offset(tp, self.highwater(tp))
            yield tp, tp_records
