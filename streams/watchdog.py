"""Commit watchdog: re-seek a partition whose committed offset stopped behind acked work.

Faust can lose the acks of messages delivered while it recovers (faust-streaming issue 216: the
fetcher resumes before the seek to committed offsets, the in-flight messages are dropped, and
their redelivery is then filtered out as already read). The gap at the head of the partition
then blocks every later commit for good (issues 318 and 681). The watchdog sees it: work acked
beyond the committed offset while the committed offset has not moved for ``stall_s``. It seeks
the partition back to its committed offset; the redelivered events are skipped by the
per-customer offsets, and their acks close the gap.

Until the committed offset moves again the partition is in :attr:`CommitWatchdog.stalled`, and
the worker reports not-ready (``/readyz``): acked work keeps growing past a commit that does not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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
    ) -> None:
        """``head`` gives the first offset read since the partition was assigned: where a
        partition with nothing committed yet starts, and where it is re-sought to."""
        self.committed = committed
        self.reseek = reseek
        self.head = head
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
            self._since.pop(tp, None)
            self.stalled.discard(tp)

    async def check(self) -> None:
        if not self.acked_max:
            return
        now = self.clock()
        try:
            offsets = await self.committed(list(self.acked_max))
        except Exception as exc:  # a broker outage must not stop the agent: look next time
            log.warning("commit_watchdog_skipped", error=f"{type(exc).__name__}: {exc}"[:200])
            return
        log.debug(
            "watchdog_check",
            acked={f"{t}:{p}": o for (t, p), o in self.acked_max.items()},
            committed={f"{t}:{p}": o for (t, p), o in offsets.items()},
        )
        for tp, acked in self.acked_max.items():
            committed = offsets.get(tp)
            start = committed if committed is not None else self.head(tp)
            behind = start is not None and acked + 1 > start
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
                    acked_up_to=acked,
                )
                self.reseeks += 1
                self.stalled.add(tp)
                self._since[tp] = (start, now)
                await self.reseek(tp, start)
