"""Stall watchers. The commit watchdog re-seeks a partition whose committed offset stopped behind
acked work; the batch timer tells how long the agent has held its current batch.

Faust can lose the acks of messages delivered while it recovers (faust-streaming issue 216: the
fetcher resumes before the seek to committed offsets, the in-flight messages are dropped, and
their redelivery is then filtered out as already read). The gap at the head of the partition
then blocks every later commit for good (issues 318 and 681). The watchdog sees it: work acked
beyond the committed offset while the committed offset has not moved for ``stall_s``. It seeks
the partition back to its committed offset; the redelivered events are skipped by the
per-customer offsets, and their acks close the gap.

A partition can also stall with nothing acked: when the messages past its committed offset were
fetched and then dropped (around a seek or a rebalance) and are the partition's last, no later
ack shows the stall. ``idle`` names such candidates: partitions assigned here whose last known
highwater is past the committed offset while the worker holds none of their messages and has
nothing queued. Committed behind that highwater, unmoved for ``stall_s``, is a stall too.

Until the committed offset moves again the partition is in :attr:`CommitWatchdog.stalled`, and
the worker reports not-ready (``/readyz``): acked work keeps growing past a commit that does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

TopicPartition = tuple[str, int]


class CommitWatchdog:
    def __init__(
        self,
        committed: Callable[[list[TopicPartition]], Awaitable[dict[TopicPartition, int | None]]],
        reseek: Callable[[TopicPartition, int], Awaitable[None]],
        clock: Callable[[], float],
        stall_s: float = 15.0,
        head: Callable[[TopicPartition], int | None] = lambda tp: None,
        idle: Callable[[], dict[TopicPartition, int]] = dict,
    ) -> None:
        """``head`` gives the first offset read since the partition was assigned: where a
        partition with nothing committed yet starts, and where it is re-sought to. ``idle``
        gives the partitions the worker holds nothing of, with their last known highwater."""
        self.committed = committed
        self.reseek = reseek
        self.head = head
        self.idle = idle
        self.clock = clock
        self.stall_s = stall_s
        self.acked_max: dict[TopicPartition, int] = {}
        self._since: dict[TopicPartition, tuple[int | None, float]] = {}
        self.stalled: set[TopicPartition] = set()
        self.reseeks = 0

    def acked(self, tp: TopicPartition, offset: int) -> None:
        if offset > self.acked_max.get(tp, -1):
            self.acked_max[tp] = offset

    def forget(self, partitions: set[int]) -> None:
        for tp in [tp for tp in self.acked_max if tp[1] in partitions]:
            del self.acked_max[tp]
        for tp in [tp for tp in self._since if tp[1] in partitions]:
            del self._since[tp]
        self.stalled = {tp for tp in self.stalled if tp[1] not in partitions}

    async def check(self) -> None:
        idle = self.idle()
        if not self.acked_max and not idle:
            return
        now = self.clock()
        try:
            offsets = await self.committed(sorted(set(self.acked_max) | set(idle)))
        except Exception as exc:  # a broker outage must not stop the agent: look next time
            log.warning("commit_watchdog_skipped", error=f"{type(exc).__name__}: {exc}"[:200])
            return
        log.debug(
            "watchdog_check",
            acked={f"{t}:{p}": o for (t, p), o in self.acked_max.items()},
            committed={f"{t}:{p}": o for (t, p), o in offsets.items()},
        )
        for tp, committed in offsets.items():
            start = committed if committed is not None else self.head(tp)
            ahead = max(self.acked_max.get(tp, -1) + 1, idle.get(tp, -1))
            behind = start is not None and ahead > start
            previous, since = self._since.get(tp, (None, now))
            if not behind or start != previous:
                self._since[tp] = (start, now)
                self.stalled.discard(tp)
                continue
            if now - since >= self.stall_s and start is not None:
                log.warning(
                    "commit_stalled_reseek",
                    topic=tp[0],
                    partition=tp[1],
                    committed=committed,
                    start=start,
                    acked_up_to=self.acked_max.get(tp),
                    highwater=idle.get(tp),
                )
                self.reseeks += 1
                self.stalled.add(tp)
                self._since[tp] = (start, now)
                await self.reseek(tp, start)


class BatchTimer:
    """How long the agent has held its current batch: :meth:`stuck` answers past ``stuck_after_s``
    (and then again each ``stuck_after_s`` later, so a long stall is told, not flooded)."""

    def __init__(self, clock: Callable[[], float], stuck_after_s: float = 30.0) -> None:
        self.clock = clock
        self.stuck_after_s = stuck_after_s
        self._started: float | None = None
        self._messages = 0
        self._told = 0.0

    def start(self, messages: int) -> None:
        self._started, self._messages, self._told = self.clock(), messages, 0.0

    def stop(self) -> None:
        self._started = None

    def stuck(self) -> tuple[float, int] | None:
        """(seconds held, messages) of a batch held too long since it was last told, or None."""
        if self._started is None:
            return None
        waited = self.clock() - self._started
        if waited - self._told < self.stuck_after_s:
            return None
        self._told = waited
        return waited, self._messages


def where(task: asyncio.Task[Any], depth: int = 16) -> list[str]:
    """Where ``task`` waits, outermost first: ``file:line function`` for each coroutine on its
    await chain (``Task.get_stack`` gives only the outermost), then what the innermost awaits."""
    frames: list[str] = []
    awaiting: Any = task.get_coro()
    while awaiting is not None and len(frames) < depth:
        frame = getattr(awaiting, "cr_frame", None) or getattr(awaiting, "gi_frame", None)
        if frame is None:
            frames.append(repr(awaiting)[:160])
            break
        code = frame.f_code
        frames.append(f"{code.co_filename}:{frame.f_lineno} {code.co_name}")
        awaiting = getattr(awaiting, "cr_await", None) or getattr(awaiting, "gi_yieldfrom", None)
    return frames
