"""The commit watchdog re-seeks only a partition whose commits stalled behind acked work."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.watchdog import BatchTimer, CommitWatchdog, where

TP = ("t.transactions", 0)


class Broker:
    def __init__(self) -> None:
        self.committed: dict[tuple[str, int], int | None] = {TP: 100}
        self.seeks: list[tuple[tuple[str, int], int]] = []
        self.now = 0.0

    async def offsets(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
        return {tp: self.committed.get(tp) for tp in tps}

    async def seek(self, tp: tuple[str, int], offset: int) -> None:
        self.seeks.append((tp, offset))


def watchdog(broker: Broker, **extra: Any) -> CommitWatchdog:
    return CommitWatchdog(
        broker.offsets, broker.seek, clock=lambda: broker.now, stall_s=15, **extra
    )


async def look(broker: Broker, dog: CommitWatchdog, *times: float) -> None:
    """The watchdog's periodic check at each of ``times``."""
    for t in times:
        broker.now = t
        await dog.check()


async def stalled(broker: Broker) -> CommitWatchdog:
    """A watchdog that has just seen ``TP`` stall: 500 acked, the commit at 100 for 15 s."""
    dog = watchdog(broker)
    dog.acked(TP, 500)
    await look(broker, dog, 0, 15)
    assert dog.stalled == {TP}
    return dog


async def test_stalled_commit_behind_acked_work_is_reseeked_once_per_stall() -> None:
    """Committed stuck at 100 while 500 is acked: one seek back to 100 after 15 s, not before."""
    broker = Broker()
    dog = watchdog(broker)
    dog.acked(TP, 500)
    await look(broker, dog, 0, 5, 10)
    assert broker.seeks == []
    await look(broker, dog, 15)
    assert broker.seeks == [(TP, 100)]
    await look(broker, dog, 20)
    assert broker.seeks == [(TP, 100)]


async def test_moving_or_caught_up_commits_are_left_alone() -> None:
    """Commits that advance, or that caught up with the acks, never trigger a seek."""
    broker = Broker()
    dog = watchdog(broker)
    dog.acked(TP, 500)
    for t in range(0, 60, 5):
        broker.now = t
        broker.committed[TP] = 100 + t  # advancing
        await dog.check()
    broker.committed[TP] = 501  # caught up
    for t in range(60, 120, 5):
        broker.now = t
        await dog.check()
    assert broker.seeks == []


async def test_a_stalled_partition_is_flagged_until_its_commit_moves() -> None:
    """The stall marks the partition (readiness reads it) until the committed offset advances."""
    broker = Broker()
    dog = await stalled(broker)
    broker.now = 20
    broker.committed[TP] = 300
    await dog.check()
    assert dog.stalled == set()


async def test_a_partition_with_nothing_committed_is_reseeked_to_where_it_started() -> None:
    """Work acked beyond the first offset read, and still nothing committed after 15 s (a message
    at the head was dropped, faust-streaming issue 216): seek back to that first offset."""
    broker = Broker()
    broker.committed[TP] = None
    dog = watchdog(broker, head=lambda tp: 0)
    dog.acked(TP, 500)
    await look(broker, dog, 0, 10, 15)
    assert broker.seeks == [(TP, 0)]
    assert TP in dog.stalled


async def test_a_broker_that_cannot_answer_skips_the_look_and_the_next_one_counts() -> None:
    """The offsets lookup failing (the broker paused: aiokafka asserts it has no coordinator)
    must not stop the agent; the stall is still seen once the broker answers again."""
    broker = Broker()
    answering = broker.offsets

    async def unreachable(tps: list[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
        raise AssertionError("Did we not perform bootstrap?")

    dog = CommitWatchdog(
        lambda tps: unreachable(tps) if broker.now < 10 else answering(tps),
        broker.seek,
        clock=lambda: broker.now,
        stall_s=15,
    )
    dog.acked(TP, 500)
    await look(broker, dog, 5)
    assert broker.seeks == []
    await look(broker, dog, 10, 25)
    assert broker.seeks == [(TP, 100)]


async def test_an_idle_partition_behind_its_highwater_is_reseeked_to_its_commit() -> None:
    """Nothing acked, nothing held, the broker at 3412 and the commit at 3378 for 15 s (the
    partition's last messages were fetched and dropped): seek back to 3378, once per stall."""
    broker = Broker()
    broker.committed[TP] = 3378
    idle = {TP: 3412}
    dog = watchdog(broker, idle=lambda: idle)
    await look(broker, dog, 0, 5, 10)
    assert broker.seeks == []
    await look(broker, dog, 15)
    assert broker.seeks == [(TP, 3378)]
    assert dog.stalled == {TP}
    broker.now = 20
    broker.committed[TP] = 3412  # the redelivered tail is committed
    await dog.check()
    assert broker.seeks == [(TP, 3378)] and dog.stalled == set()


async def test_an_idle_partition_caught_up_or_committing_is_left_alone() -> None:
    """Committed at the highwater, or a commit that keeps moving toward it: no seek."""
    broker = Broker()
    idle = {TP: 500}
    dog = watchdog(broker, idle=lambda: idle)
    for t in range(0, 60, 5):
        broker.now = t
        broker.committed[TP] = min(500, 100 + 10 * t)
        await dog.check()
    assert broker.seeks == []


async def test_revoked_partitions_are_forgotten_with_their_stall() -> None:
    """A stalled partition that moves away is no longer reported stalled here."""
    broker = Broker()
    dog = await stalled(broker)
    dog.forget({TP[1]})
    assert dog.stalled == set()
    await look(broker, dog, 40)
    assert broker.seeks == [(TP, 100)]


def test_batch_timer_tells_a_held_batch_once_per_period() -> None:
    """Nothing before 30 s; at 30 s the batch is told, then not again until 60 s; nothing
    once it is done."""
    now = [0.0]
    timer = BatchTimer(lambda: now[0], stuck_after_s=30)
    assert timer.stuck() is None
    timer.start(2000)
    now[0] = 29.0
    assert timer.stuck() is None
    now[0] = 31.0
    assert timer.stuck() == (31.0, 2000)
    now[0] = 45.0
    assert timer.stuck() is None
    now[0] = 62.0
    assert timer.stuck() == (62.0, 2000)
    timer.stop()
    now[0] = 200.0
    assert timer.stuck() is None


async def test_where_names_the_coroutine_a_task_waits_in() -> None:
    """The await chain down to the innermost coroutine and what it awaits."""
    gate = asyncio.Event()

    async def inner() -> None:
        await gate.wait()

    async def outer() -> None:
        await inner()

    task = asyncio.ensure_future(outer())
    await asyncio.sleep(0)
    frames = where(task)
    gate.set()
    await task
    names = [f.split()[-1] for f in frames]
    assert names[:3] == ["outer", "inner", "wait"], frames
    assert len(frames) == 4  # and what ``wait`` awaits: a future
