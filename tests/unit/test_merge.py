"""Event-time merge of a partition's input topics: order, bounded waiting and revocation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from detectors.events import (
    Channel,
    Direction,
    Event,
    Repayment,
    RepaymentType,
    Transaction,
    TxStatus,
)
from streams.merge import EventTimeMerger, Pending, TopicPartition, merge_key, undecodable

TX = "ews.transactions"
REP = "ews.repayments"
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


def _tx(event_id: str, second: int) -> Transaction:
    return Transaction(
        event_id=event_id,
        customer_id="c1",
        account_id="a1",
        ts=T0 + timedelta(seconds=second),
        amount=Decimal("10.00"),
        currency="EUR",
        direction=Direction.DEBIT,
        channel=Channel.CARD,
        status=TxStatus.POSTED,
    )


def _rep(event_id: str, second: int) -> Repayment:
    return Repayment(
        event_id=event_id,
        customer_id="c1",
        loan_id="L1",
        ts=T0 + timedelta(seconds=second),
        type=RepaymentType.PAYMENT,
        instalment_no=1,
        due_date=date(2025, 3, 1),
        amount_due=Decimal("100.00"),
        amount_paid=Decimal("100.00"),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Broker:
    """Highwater marks per topic partition; None means not fetched yet."""

    def __init__(self) -> None:
        self.marks: dict[TopicPartition, int | None] = {}

    def __call__(self, tp: TopicPartition) -> int | None:
        return self.marks.get(tp)


class Feed:
    """Pushes events into a merger with consecutive offsets per topic partition."""

    def __init__(self, merger: EventTimeMerger) -> None:
        self.merger = merger
        self.next_offset: dict[TopicPartition, int] = {}

    def push(self, topic: str, event: Event, partition: int = 0) -> None:
        offset = self.next_offset.get((topic, partition), 0)
        self.next_offset[(topic, partition)] = offset + 1
        self.merger.push(Pending(merge_key(event), topic, partition, offset, event, handle=None))


def _setup(
    idle_s: float = 0.2, max_wait_s: float = 2.0
) -> tuple[EventTimeMerger, Feed, Clock, Broker]:
    clock, broker = Clock(), Broker()
    merger = EventTimeMerger([REP, TX], broker, clock, idle_s=idle_s, max_wait_s=max_wait_s)
    return merger, Feed(merger), clock, broker


def _ids(items: list[Pending]) -> list[str]:
    return [p.event.event_id for p in items]


def test_merge_key_orders_by_time_then_repayment_then_event_id() -> None:
    """merge_key sorts by event time, then repayment before transaction, then event_id."""
    events: list[Event] = [_tx("t-b", 5), _tx("t-a", 5), _rep("r-z", 5), _tx("t-0", 4)]
    keys = sorted(merge_key(e) for e in events)
    assert [k[2] for k in keys] == ["t-0", "r-z", "t-a", "t-b"]


def test_both_topics_buffered_merge_by_event_time_keeping_fifo() -> None:
    """With both topics buffered, heads go in (ts, rank, id) order; a topic is never reordered."""
    merger, feed, _, broker = _setup()
    for event in (_tx("t1", 1), _tx("t3", 3), _tx("t2-late", 2), _tx("t5", 5), _tx("t7", 7)):
        feed.push(TX, event)
    for event in (_rep("r2", 2), _rep("r3", 3), _rep("r6", 6), _rep("r9", 9)):
        feed.push(REP, event)
    broker.marks = {(TX, 0): 5, (REP, 0): 4}  # both caught up: nothing more on the broker
    released = merger.pop_ready()
    # t2-late stays behind t3 (offset order within a topic); r3 precedes t3 (repayment rank).
    assert _ids(released) == ["t1", "r2", "r3", "t3", "t2-late", "t5", "r6", "t7"]
    assert _ids(merger.pop_ready()) == []  # r9 waits for the idle transactions topic
    assert len(merger) == 1
    offsets = [p.offset for p in released if p.topic == TX]
    assert offsets == sorted(offsets)


def test_caught_up_empty_topic_holds_events_until_idle() -> None:
    """With one topic empty and caught up (highwater == last + 1), events wait idle_s, then go."""
    merger, feed, clock, broker = _setup(idle_s=0.25, max_wait_s=2.0)
    merger.seen(REP, 0, 9)
    broker.marks = {(REP, 0): 10, (TX, 0): 2}
    feed.push(TX, _tx("t1", 1))
    feed.push(TX, _tx("t2", 2))
    assert merger.pop_ready() == []
    clock.now += 0.125
    assert merger.pop_ready() == []
    clock.now += 0.125
    assert _ids(merger.pop_ready()) == ["t1", "t2"]
    assert len(merger) == 0


def test_never_written_topic_counts_as_caught_up() -> None:
    """A topic with highwater 0 and nothing read is caught up: only idle_s is waited."""
    merger, feed, clock, broker = _setup(idle_s=0.5, max_wait_s=5.0)
    broker.marks = {(REP, 0): 0, (TX, 0): 1}
    feed.push(TX, _tx("t1", 1))
    assert merger.pop_ready() == []
    clock.now += 0.5
    assert _ids(merger.pop_ready()) == ["t1"]


def test_empty_topic_with_more_on_the_broker_holds_until_max_wait() -> None:
    """With highwater > last + 1 on the empty topic, events wait up to max_wait_s."""
    merger, feed, clock, broker = _setup(idle_s=0.25, max_wait_s=2.0)
    merger.seen(REP, 0, 9)
    broker.marks = {(REP, 0): 15, (TX, 0): 1}
    feed.push(TX, _tx("t1", 1))
    assert merger.pop_ready() == []
    clock.now += 0.5  # past idle_s: still held, data is known to be coming
    assert merger.pop_ready() == []
    clock.now += 1.25
    assert merger.pop_ready() == []
    clock.now += 0.25
    assert _ids(merger.pop_ready()) == ["t1"]


def test_unfetched_topic_holds_until_max_wait() -> None:
    """An empty topic whose highwater is still unknown is waited for up to max_wait_s."""
    merger, feed, clock, _ = _setup(idle_s=0.2, max_wait_s=1.0)
    feed.push(TX, _tx("t1", 1))
    assert merger.pop_ready() == []
    clock.now += 0.5
    assert merger.pop_ready() == []
    clock.now += 0.5
    assert _ids(merger.pop_ready()) == ["t1"]


def test_arrival_of_the_missing_topic_restores_exact_order() -> None:
    """Held events merge with the late topic's earlier events once it arrives."""
    merger, feed, clock, broker = _setup(idle_s=0.25, max_wait_s=2.0)
    broker.marks = {(REP, 0): 1, (TX, 0): 2}
    feed.push(TX, _tx("t5", 5))
    feed.push(TX, _tx("t8", 8))
    assert merger.pop_ready() == []
    clock.now += 0.125
    feed.push(REP, _rep("r3", 3))
    assert _ids(merger.pop_ready()) == ["r3"]  # repayments empty again: the idle wait restarts
    clock.now += 0.125
    assert merger.pop_ready() == []
    clock.now += 0.125
    assert _ids(merger.pop_ready()) == ["t5", "t8"]


def test_partitions_merge_independently() -> None:
    """An empty topic in one partition does not hold back another partition."""
    merger, feed, _, broker = _setup()
    broker.marks = {(TX, 0): 1, (REP, 0): None, (TX, 1): 2, (REP, 1): 1}
    feed.push(TX, _tx("p0-t", 0), partition=0)
    feed.push(TX, _tx("p1-t0", 0), partition=1)
    feed.push(TX, _tx("p1-t9", 9), partition=1)
    feed.push(REP, _rep("p1-r5", 5), partition=1)
    # p0-t waits for partition 0's repayments; p1-t9 waits once partition 1's repayments drain.
    assert _ids(merger.pop_ready()) == ["p1-t0", "p1-r5"]
    assert len(merger) == 2


def test_forget_drops_revoked_partitions() -> None:
    """forget() returns and drops the buffered events of revoked partitions only."""
    merger, feed, clock, broker = _setup(idle_s=0.2, max_wait_s=2.0)
    broker.marks = {(TX, 0): 2, (TX, 1): 1, (REP, 0): 0, (REP, 1): 0}
    feed.push(TX, _tx("p0-a", 1), partition=0)
    feed.push(TX, _tx("p0-b", 2), partition=0)
    feed.push(TX, _tx("p1-a", 1), partition=1)
    assert merger.pop_ready() == []
    dropped = merger.forget({0})
    assert sorted(_ids(dropped)) == ["p0-a", "p0-b"]
    assert len(merger) == 1
    clock.now += 0.2
    assert _ids(merger.pop_ready()) == ["p1-a"]
    assert merger.forget({0, 1}) == []


def test_seen_without_push_advances_the_read_position() -> None:
    """A message read but not buffered (bad input) still counts toward being caught up."""
    merger, feed, clock, broker = _setup(idle_s=0.2, max_wait_s=2.0)
    broker.marks = {(REP, 0): 3, (TX, 0): 1}
    feed.push(TX, _tx("t1", 1))
    merger.seen(REP, 0, 1)  # offset 2 still to come: wait up to max_wait_s
    assert merger.pop_ready() == []
    clock.now += 0.3
    assert merger.pop_ready() == []
    merger.seen(REP, 0, 2)  # the dead-lettered last message: now caught up, idle_s has passed
    assert _ids(merger.pop_ready()) == ["t1"]


def test_reassigned_partition_waits_again_after_forget() -> None:
    """After forget() and re-assignment, an empty topic is waited for afresh, not released early."""
    merger, feed, clock, _ = _setup(idle_s=0.25, max_wait_s=2.0)
    feed.push(TX, _tx("t1", 1))
    assert merger.pop_ready() == []
    clock.now += 2.0
    assert _ids(merger.pop_ready()) == ["t1"]
    merger.forget({0})
    clock.now += 100.0
    feed.push(TX, _tx("t2", 2))
    assert merger.pop_ready() == []  # the repayments topic is waited for again


def test_topic_committed_up_to_its_highwater_is_not_waited_for_after_forget() -> None:
    """After a let-go or a takeover nothing has been read from a topic partition yet; if its
    committed offset is its highwater, it is caught up (idle_s), not waited for up to max_wait_s;
    one committed short of its highwater still is."""
    clock, broker = Clock(), Broker()
    committed: dict[TopicPartition, int] = {(REP, 0): 208, (REP, 1): 100}
    merger = EventTimeMerger(
        [REP, TX], broker, clock, idle_s=0.25, max_wait_s=30.0, committed=committed.get
    )
    feed = Feed(merger)
    broker.marks = {(REP, 0): 208, (TX, 0): 2, (REP, 1): 208, (TX, 1): 2}
    feed.push(TX, _tx("p0", 1), partition=0)
    feed.push(TX, _tx("p1", 1), partition=1)
    assert merger.pop_ready() == []
    clock.now += 0.25
    assert _ids(merger.pop_ready()) == ["p0"]
    clock.now += 29.75
    assert _ids(merger.pop_ready()) == ["p1"]
    assert merger.gave_up == 1


def test_an_undecodable_message_leaves_in_its_place_never_before_earlier_events() -> None:
    """The worker acks what leaves the merger, and Faust commits up to the first run of acked
    offsets whatever lies before it: a message that failed to decode must not leave (be acked)
    while an earlier event of its topic partition is still held."""
    merger, feed, clock, broker = _setup(idle_s=0.2)
    feed.push(TX, _tx("t1", 1))
    feed.push(TX, _tx("t2", 2))
    merger.push(undecodable(TX, 0, 2, handle=None, error="bad"))
    feed.next_offset[(TX, 0)] = 3
    feed.push(TX, _tx("t4", 4))
    broker.marks = {(TX, 0): 4, (REP, 0): 0}
    assert merger.pop_ready() == []  # held while the empty repayments topic may still come
    clock.now += 0.3
    released = merger.pop_ready()
    assert [p.offset for p in released] == [0, 1, 2, 3]
    assert [p.error for p in released] == [None, None, "bad", None]


def test_a_limited_release_keeps_merge_order_and_lets_partitions_take_turns() -> None:
    """``pop_ready(limit)`` releases at most ``limit``; what it leaves goes next, in the same
    order, and no partition always goes first."""
    merger, feed, _, broker = _setup()
    for day in range(1, 7):
        for partition in (0, 1):
            feed.push(TX, _tx(f"t{partition}-{day}", day), partition)
            feed.push(REP, _rep(f"r{partition}-{day}", day), partition)
    broker.marks = {(TX, 0): 6, (REP, 0): 6, (TX, 1): 6, (REP, 1): 6}
    first = merger.pop_ready(limit=4)
    second = merger.pop_ready(limit=4)
    assert len(first) == len(second) == 4
    assert {p.partition for p in first} == {0} and {p.partition for p in second} == {1}
    rest = merger.pop_ready()
    by_partition = [
        [p.event.event_id for p in first + second + rest if p.partition == partition]
        for partition in (0, 1)
    ]
    for partition, ids in enumerate(by_partition):
        assert ids == [f"{k}{partition}-{d}" for d in range(1, 7) for k in ("r", "t")][: len(ids)]
