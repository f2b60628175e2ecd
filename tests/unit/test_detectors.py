"""Detectors: the Signal contract suite, DPD arithmetic, customer state and the risk detector."""

from __future__ import annotations

import copy
import math
import random
import re
import sys
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from config.rules import load_rules
from detectors.alert import AlertKind, Level
from detectors.base import Signal
from detectors.engine import MAX_REASONS, RiskDetector
from detectors.events import (
    Channel,
    Direction,
    Event,
    Repayment,
    RepaymentType,
    Source,
    Transaction,
    TxStatus,
)
from detectors.repayment import DaysPastDue
from detectors.scorecard import Contribution, Scored
from detectors.state import FEATURE_NAMES, CustomerState
from detectors.transactions import AccountConduct, SpendSpike
from tests.unit.contract import only_json_values

TX_TOPIC = "ews.transactions"
REP_TOPIC = "ews.repayments"
START = datetime(2025, 1, 1, tzinfo=UTC)


def tx(
    event_id: str = "t1",
    ts: datetime = START,
    amount: str = "25.00",
    *,
    customer_id: str = "c1",
    direction: Direction = Direction.DEBIT,
    channel: Channel = Channel.CARD,
    status: TxStatus = TxStatus.POSTED,
    mcc: str | None = None,
    balance_after: str | None = None,
    credit_limit: str | None = None,
) -> Transaction:
    return Transaction(
        event_id=event_id,
        customer_id=customer_id,
        account_id="acc-1",
        ts=ts,
        amount=Decimal(amount),
        currency="EUR",
        direction=direction,
        channel=channel,
        status=status,
        mcc=mcc,
        balance_after=None if balance_after is None else Decimal(balance_after),
        credit_limit=None if credit_limit is None else Decimal(credit_limit),
    )


def rep(
    type_: RepaymentType,
    due: date,
    amount_due: str = "100.00",
    amount_paid: str = "0",
    *,
    loan: str = "L1",
    no: int = 1,
    ts: datetime | None = None,
    event_id: str | None = None,
    customer_id: str = "c1",
) -> Repayment:
    when = ts or datetime(due.year, due.month, due.day, 9, tzinfo=UTC)
    return Repayment(
        event_id=event_id or f"{loan}-{no}-{type_.value}-{amount_paid}-{when.isoformat()}",
        customer_id=customer_id,
        loan_id=loan,
        ts=when,
        type=type_,
        instalment_no=no,
        due_date=due,
        amount_due=Decimal(amount_due),
        amount_paid=Decimal(amount_paid),
    )


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


_AMOUNTS = [Decimal(n).scaleb(-2) for n in (1, 99, 450, 1999, 2500, 7300, 12000, 99999, 250000)]
_BALANCES = [Decimal(n).scaleb(-2) for n in (-150000, -2000, -1, 0, 5000, 120000)]
_DIRECTIONS = list(Direction)
_CHANNELS = list(Channel)
_STATUSES = [TxStatus.POSTED] * 6 + [TxStatus.RETURNED, TxStatus.REVERSED]
_TYPES = list(RepaymentType)
_MCCS = [None, "5411", "7995", "5812"]


def random_events(n: int, seed: int = 7, customer_id: str = "c1") -> Iterator[Event]:
    """A seeded stream of mixed transactions and repayments for one customer."""
    rng = random.Random(seed)
    for i in range(n):
        ts = START + timedelta(minutes=7 * i)
        if rng.random() < 0.6:
            yield Transaction(
                event_id=f"e{i}",
                customer_id=customer_id,
                account_id="a1",
                ts=ts,
                amount=rng.choice(_AMOUNTS),
                currency="EUR",
                direction=rng.choice(_DIRECTIONS),
                channel=rng.choice(_CHANNELS),
                status=rng.choice(_STATUSES),
                mcc=rng.choice(_MCCS),
                balance_after=rng.choice(_BALANCES),
                credit_limit=Decimal(1000) if rng.random() < 0.5 else None,
            )
        else:
            yield Repayment(
                event_id=f"e{i}",
                customer_id=customer_id,
                loan_id=f"L{rng.randrange(3)}",
                ts=ts,
                type=rng.choice(_TYPES),
                instalment_no=rng.randrange(400),
                due_date=date(2025, 1, 1) + timedelta(days=rng.randrange(600)),
                amount_due=rng.choice(_AMOUNTS),
                amount_paid=rng.choice(_AMOUNTS),
            )


def telling_events() -> list[Event]:
    """A stream that moves every signal: spend spikes, overdraft, returns, missed instalments."""
    events: list[Event] = []
    for i in range(30):
        events.append(tx(f"s{i}", START + timedelta(hours=i), str(20 + i % 7), balance_after="50"))
    for i in range(12):
        events.append(
            tx(
                f"b{i}",
                START + timedelta(days=2, hours=i),
                "4800" if i % 2 else "31",
                status=TxStatus.RETURNED if i % 3 == 0 else TxStatus.POSTED,
                channel=Channel.CASH_ADVANCE if i % 4 == 0 else Channel.CARD,
                mcc="7995" if i % 5 == 0 else None,
                balance_after=str(-37 * (i + 1)),
                credit_limit="1000",
            )
        )
    events.append(rep(RepaymentType.DUE, date(2025, 1, 10), "120.00", no=1))
    events.append(rep(RepaymentType.DUE, date(2025, 2, 10), "120.00", no=2))
    events.append(rep(RepaymentType.PAYMENT, date(2025, 2, 10), "120.00", "40.00", no=2))
    return events


SIGNALS: list[Callable[[], Signal]] = [DaysPastDue, SpendSpike, AccountConduct]
SIGNAL_IDS = [s.__name__ for s in SIGNALS]  # type: ignore[attr-defined]
NOW = datetime(2025, 3, 1, tzinfo=UTC)


def learned(factory: Callable[[], Signal], events: list[Event] | None = None) -> Signal:
    signal = factory()
    for event in events if events is not None else telling_events():
        signal.learn_one(event)
    return signal


# Contract suite, run over every Signal


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_learned_state_moves(factory: Callable[[], Signal]) -> None:
    """The telling stream changes every signal's state (so the checks below are not vacuous)."""
    assert learned(factory).to_state() != factory().to_state()


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_learn_one_does_not_mutate_the_event(factory: Callable[[], Signal]) -> None:
    """Learning leaves every input event exactly as it was."""
    signal = factory()
    for event in telling_events():
        before = copy.deepcopy(event)
        signal.learn_one(event)
        assert event == before


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_no_reference_to_the_event_is_kept(factory: Callable[[], Signal]) -> None:
    """After learning, nothing holds the event and the state is plain JSON values only."""
    signal = factory()
    for event in telling_events():
        refs = sys.getrefcount(event)
        signal.learn_one(event)
        assert sys.getrefcount(event) == refs
    state = signal.to_state()
    assert only_json_values(state)
    assert orjson.loads(orjson.dumps(state)) == state


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_state_round_trip_keeps_state(factory: Callable[[], Signal]) -> None:
    """load_state(to_state()) through JSON bytes restores a state that serialises identically."""
    signal = learned(factory)
    restored = type(signal)(**signal.params)
    restored.load_state(orjson.loads(orjson.dumps(signal.to_state())))
    assert restored.to_state() == signal.to_state()
    for event in random_events(200, seed=3):
        signal.learn_one(event)
        restored.learn_one(event)
    assert restored.to_state() == signal.to_state()


@pytest.mark.parametrize(
    "factory",
    [
        DaysPastDue,
        SpendSpike,
        AccountConduct,
    ],
    ids=SIGNAL_IDS,
)
def test_state_round_trip_keeps_scores(factory: Callable[[], Signal]) -> None:
    """A signal restored from its state scores exactly as the original does."""
    signal = learned(factory)
    restored = type(signal)(**signal.params)
    restored.load_state(orjson.loads(orjson.dumps(signal.to_state())))
    assert restored.score_one(NOW) == signal.score_one(NOW)


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_clone_starts_fresh(factory: Callable[[], Signal]) -> None:
    """clone() keeps the parameters and forgets everything learned."""
    signal = learned(factory)
    clone = signal.clone()
    assert type(clone) is type(signal)
    assert clone.params == signal.params
    assert clone.to_state() == factory().to_state()
    assert clone.score_one(NOW) == factory().score_one(NOW)
    clone.learn_one(telling_events()[0])
    assert signal.to_state() == learned(factory).to_state()


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_score_one_is_pure(factory: Callable[[], Signal]) -> None:
    """Scoring twice gives the same features and leaves the state untouched."""
    signal = learned(factory)
    state = orjson.dumps(signal.to_state())
    first = signal.score_one(NOW)
    second = signal.score_one(NOW)
    assert first == second
    assert all(isinstance(v, float) for v in first.values())
    assert orjson.dumps(signal.to_state()) == state


@pytest.fixture(scope="module")
def long_stream() -> list[Event]:
    return list(random_events(100_000, seed=11))


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_memory_bounded_over_a_long_stream(
    factory: Callable[[], Signal], long_stream: list[Event]
) -> None:
    """After 100k random events for one customer the serialised state stays under 1 KB."""
    signal = factory()
    largest = 0
    for i, event in enumerate(long_stream):
        signal.learn_one(event)
        if i % 5000 == 0:
            largest = max(largest, len(orjson.dumps(signal.to_state())))
    largest = max(largest, len(orjson.dumps(signal.to_state())))
    assert largest < 1024


# Days past due arithmetic


def test_dpd_counts_days_from_the_due_date() -> None:
    """Due Jan 31 2025 and unpaid: 29 DPD on Mar 1, 30 on Mar 2 (February has 28 days)."""
    dpd = DaysPastDue()
    dpd.learn_one(rep(RepaymentType.DUE, date(2025, 1, 31)))
    assert dpd.score_one(at(2025, 1, 31))["dpd"] == 0.0
    assert dpd.score_one(at(2025, 2, 1))["dpd"] == 1.0
    assert dpd.score_one(at(2025, 3, 1))["dpd"] == 29.0
    assert dpd.score_one(at(2025, 3, 2))["dpd"] == 30.0
    assert dpd.days_past_due(at(2025, 3, 2)) == 30
    assert dpd.score_one(at(2025, 3, 2))["missed_instalments"] == 1.0
    assert dpd.score_one(at(2025, 3, 2))["arrears"] == 100.0


def test_dpd_in_a_leap_year() -> None:
    """Due Jan 31 2024 (leap year): 30 DPD already on Mar 1."""
    dpd = DaysPastDue()
    dpd.learn_one(rep(RepaymentType.DUE, date(2024, 1, 31)))
    assert dpd.score_one(at(2024, 3, 1))["dpd"] == 30.0


@pytest.mark.parametrize(("paid", "closed"), [("100.00", True), ("99.99", True), ("99.98", False)])
def test_payment_within_one_cent_closes_the_instalment(paid: str, closed: bool) -> None:
    """A payment covering the amount due to within 0.01 closes the instalment."""
    dpd = DaysPastDue()
    dpd.learn_one(rep(RepaymentType.DUE, date(2025, 1, 31), "100.00"))
    dpd.learn_one(rep(RepaymentType.PAYMENT, date(2025, 1, 31), "100.00", paid, ts=at(2025, 2, 5)))
    features = dpd.score_one(at(2025, 3, 2))
    assert (features["dpd"] == 0.0) is closed
    assert (dpd.to_state()[0] == {}) is closed


def test_partial_payments_keep_the_instalment_open() -> None:
    """Partial payments leave it open, counted as partial; together they close it."""
    dpd = DaysPastDue()
    dpd.learn_one(rep(RepaymentType.DUE, date(2025, 1, 31), "100.00"))
    dpd.learn_one(rep(RepaymentType.PAYMENT, date(2025, 1, 31), "100.00", "40.00"))
    features = dpd.score_one(at(2025, 3, 2))
    assert features["dpd"] == 30.0
    assert features["partial_instalments"] == 1.0
    assert features["missed_instalments"] == 0.0
    assert features["arrears"] == 60.0
    dpd.learn_one(
        rep(RepaymentType.PAYMENT, date(2025, 1, 31), "100.00", "60.00", ts=at(2025, 3, 3))
    )
    assert dpd.score_one(at(2025, 3, 4))["dpd"] == 0.0


def test_reversal_reopens_a_paid_instalment() -> None:
    """Reversing the payment of a settled instalment makes it overdue again."""
    dpd = DaysPastDue()
    dpd.learn_one(rep(RepaymentType.DUE, date(2025, 1, 31), "100.00"))
    dpd.learn_one(rep(RepaymentType.PAYMENT, date(2025, 1, 31), "100.00", "100.00"))
    assert dpd.score_one(at(2025, 3, 2))["dpd"] == 0.0
    dpd.learn_one(
        rep(RepaymentType.REVERSAL, date(2025, 1, 31), "100.00", "100.00", ts=at(2025, 2, 3))
    )
    features = dpd.score_one(at(2025, 3, 2))
    assert features["dpd"] == 30.0
    assert features["missed_instalments"] == 1.0


def test_dpd_counts_from_the_oldest_unpaid_instalment() -> None:
    """With two unpaid instalments DPD counts from the older; paying it moves DPD to the next."""
    dpd = DaysPastDue()
    dpd.learn_one(rep(RepaymentType.DUE, date(2025, 1, 31), no=1))
    dpd.learn_one(rep(RepaymentType.DUE, date(2025, 2, 28), no=2))
    now = at(2025, 3, 10)
    assert dpd.score_one(now)["dpd"] == 38.0
    assert dpd.score_one(now)["missed_instalments"] == 2.0
    dpd.learn_one(rep(RepaymentType.PAYMENT, date(2025, 1, 31), "100.00", "100.00", no=1))
    assert dpd.score_one(now)["dpd"] == 10.0
    assert dpd.oldest_unpaid(now) == date(2025, 2, 28).toordinal()


def test_instalments_of_different_loans_are_separate() -> None:
    """A payment on one loan does not settle the same instalment number of another."""
    dpd = DaysPastDue()
    dpd.learn_one(rep(RepaymentType.DUE, date(2025, 1, 31), loan="A"))
    dpd.learn_one(rep(RepaymentType.DUE, date(2025, 2, 15), loan="B"))
    dpd.learn_one(rep(RepaymentType.PAYMENT, date(2025, 2, 15), "100.00", "100.00", loan="B"))
    assert dpd.score_one(at(2025, 3, 2))["dpd"] == 30.0


def test_more_than_max_open_keeps_the_oldest() -> None:
    """Beyond max_open unpaid instalments, the oldest are kept (they decide DPD)."""
    dpd = DaysPastDue(max_open=3)
    dues = [date(2025, 1, 31) + timedelta(days=30 * k) for k in range(6)]
    for no, due in reversed(list(enumerate(dues))):  # newest first: the worst order
        dpd.learn_one(rep(RepaymentType.DUE, due, no=no))
    assert len(dpd.open) == 3
    assert dpd.overflow == 3
    assert sorted(e[0] for e in dpd.open.values()) == [d.toordinal() for d in dues[:3]]
    assert dpd.score_one(at(2025, 12, 31))["dpd"] == float(
        at(2025, 12, 31).toordinal() - dues[0].toordinal()
    )


def test_non_repayment_events_do_not_touch_dpd() -> None:
    """Transactions leave the DPD state alone."""
    dpd = DaysPastDue()
    dpd.learn_one(tx())
    assert dpd.to_state() == DaysPastDue().to_state()


# Customer state


def realistic_events(customer_id: str = "c1") -> list[Event]:
    """Half a year of one customer: spend, salary, two loans paid monthly (one late, one open)."""
    rng = random.Random(5)
    events: list[Event] = []
    balance = Decimal("800.00")
    for day in range(180):
        ts = START + timedelta(days=day, hours=10)
        for k in range(rng.randrange(3)):
            amount = Decimal(rng.randrange(300, 9000)).scaleb(-2)
            balance -= amount
            events.append(
                tx(
                    f"{customer_id}-d{day}-{k}",
                    ts + timedelta(minutes=k),
                    str(amount),
                    customer_id=customer_id,
                    mcc="5411",
                    balance_after=str(balance),
                    credit_limit="1000",
                )
            )
        if day % 30 == 25:
            balance += Decimal("2100.00")
            events.append(
                tx(
                    f"{customer_id}-sal{day}",
                    ts,
                    "2100.00",
                    customer_id=customer_id,
                    direction=Direction.CREDIT,
                    channel=Channel.SALARY,
                    balance_after=str(balance),
                )
            )
    for loan in ("mortgage-1", "card-loan-2"):
        for no in range(1, 7):
            due = date(2025, 1, 28) + timedelta(days=30 * (no - 1))
            events.append(
                rep(RepaymentType.DUE, due, "450.00", loan=loan, no=no, customer_id=customer_id)
            )
            if (loan, no) == ("card-loan-2", 6):
                continue  # the last one is still unpaid
            paid_on = due + timedelta(days=40 if (loan, no) == ("card-loan-2", 3) else 1)
            events.append(
                rep(
                    RepaymentType.PAYMENT,
                    due,
                    "450.00",
                    "450.00",
                    loan=loan,
                    no=no,
                    customer_id=customer_id,
                    ts=datetime(paid_on.year, paid_on.month, paid_on.day, 9, tzinfo=UTC),
                )
            )
    events.sort(key=lambda e: (e.ts, e.event_id))
    return events


def _realistic_state() -> tuple[RiskDetector, CustomerState]:
    detector = RiskDetector(load_rules(), "scorecard-0")
    state = detector.new_state("c1")
    offsets = {TX_TOPIC: 0, REP_TOPIC: 0}
    for event in realistic_events():
        topic = REP_TOPIC if isinstance(event, Repayment) else TX_TOPIC
        detector.apply(state, event, Source(topic, 0, offsets[topic]))
        offsets[topic] += 1
    return detector, state


def test_customer_state_encode_decode_round_trip() -> None:
    """encode(decode(encode(s))) == encode(s) after a realistic event sequence."""
    _, state = _realistic_state()
    raw = state.encode()
    decoded = CustomerState.decode(raw)
    assert decoded.encode() == raw
    assert decoded.customer_id == "c1"
    assert decoded.offsets == state.offsets
    assert decoded.alert == state.alert
    assert decoded.watermark == state.watermark
    assert decoded.events == state.events


def test_customer_state_is_small() -> None:
    """One customer's encoded state stays under 1 KB."""
    _, state = _realistic_state()
    assert len(state.encode()) < 1024


def test_a_delinquent_customers_long_state_is_stored_deflated_under_1_kb() -> None:
    """Snapshots held before and in arrears (three in all, every feature nonzero) take the JSON
    past 1 KB; it is stored deflated, and decodes to the same state."""
    assert CustomerState("c1").encode()[:1] == b"{"
    _, state = _realistic_state()
    start = state.watermark
    features = {name: 1234.567 + i / 7 for i, name in enumerate(FEATURE_NAMES)}
    assert state.labels.snapshot(start + timedelta(days=31), features)
    assert state.labels.snapshot(start + timedelta(days=62), features)
    negated = {name: -value for name, value in features.items()}
    assert state.arrears.snapshot(start + timedelta(days=93), negated)
    raw = state.encode()
    assert raw[:1] == b"z"
    assert len(zlib.decompress(raw[1:])) > 1024
    assert len(raw) < 1000
    decoded = CustomerState.decode(raw)
    assert decoded.encode() == raw
    assert decoded.labels.pending == state.labels.pending
    assert decoded.arrears.pending == state.arrears.pending


def test_customer_state_rejects_unknown_version() -> None:
    """A state blob of another version is refused, not misread."""
    raw = orjson.loads(CustomerState("c1").encode())
    raw["v"] = 99
    with pytest.raises(ValueError, match="version"):
        CustomerState.decode(orjson.dumps(raw))


# Risk detector


def _run(events: list[tuple[Event, Source]]) -> tuple[list[Any], dict[str, CustomerState]]:
    detector = RiskDetector(load_rules(), "scorecard-0")
    states: dict[str, CustomerState] = {}
    alerts = []
    for event, source in events:
        state = states.setdefault(event.customer_id, detector.new_state(event.customer_id))
        alerts.extend(detector.apply(state, event, source).alerts)
    return alerts, states


def _with_sources(events: list[Event]) -> list[tuple[Event, Source]]:
    offsets = {TX_TOPIC: 0, REP_TOPIC: 0}
    out = []
    for event in events:
        topic = REP_TOPIC if isinstance(event, Repayment) else TX_TOPIC
        out.append((event, Source(topic, 1, offsets[topic])))
        offsets[topic] += 1
    return out


def _delinquent_story(customer_id: str = "c1") -> list[Event]:
    """Instalments fall due and go unpaid; account activity keeps advancing event time."""
    events: list[Event] = []
    for no in range(1, 5):
        due = date(2025, 1, 31) + timedelta(days=30 * (no - 1))
        events.append(rep(RepaymentType.DUE, due, "300.00", no=no, customer_id=customer_id))
    for day in range(0, 130, 3):
        events.append(
            tx(
                f"{customer_id}-t{day}",
                datetime(2025, 2, 1, 8, tzinfo=UTC) + timedelta(days=day),
                "45.00",
                customer_id=customer_id,
                balance_after=str(-10 * day),
                credit_limit="1500",
                status=TxStatus.RETURNED if day % 21 == 0 else TxStatus.POSTED,
            )
        )
    events.sort(key=lambda e: e.ts)
    return events


def test_redelivered_event_is_skipped_and_changes_nothing() -> None:
    """An event at or below the last applied offset of its topic is skipped without effect."""
    detector, state = _realistic_state()
    before = state.encode()
    last = state.offsets[TX_TOPIC]
    for offset in (last, last - 1, 0):
        applied = detector.apply(state, tx("again", START, "9999"), Source(TX_TOPIC, 0, offset))
        assert applied.skipped is True
        assert applied.alerts == ()
        assert state.encode() == before
    applied = detector.apply(state, tx("new", START, "5"), Source(TX_TOPIC, 0, last + 1))
    assert applied.skipped is False
    assert state.offsets[TX_TOPIC] == last + 1


def test_replay_from_fresh_state_is_deterministic() -> None:
    """The same input twice from fresh state gives identical alerts and identical state."""
    stream = _with_sources(
        sorted(
            [*_delinquent_story("c1"), *_delinquent_story("c2"), *random_events(400, 9, "c3")],
            key=lambda e: (e.ts, e.event_id),
        )
    )
    first, states1 = _run(stream)
    second, states2 = _run(stream)
    assert first
    assert first == second
    assert [a.alert_id for a in first] == [a.alert_id for a in second]
    assert {k: s.encode() for k, s in states1.items()} == {
        k: s.encode() for k, s in states2.items()
    }


@pytest.mark.parametrize(
    ("days_late", "minimum", "code"),
    [
        (30, Level.AMBER, "DPD_30_PLUS"),
        (45, Level.AMBER, "DPD_30_PLUS"),
        (89, Level.AMBER, "DPD_30_PLUS"),
        (90, Level.RED, "DPD_90_PLUS"),
        (150, Level.RED, "DPD_90_PLUS"),
    ],
)
def test_dpd_floors_force_the_level(days_late: int, minimum: Level, code: str) -> None:
    """30+ DPD is at least amber and 90+ DPD is red, with the DPD rule as a reason."""
    detector = RiskDetector(load_rules(), "scorecard-0")
    state = detector.new_state("c1")
    due = date(2025, 1, 31)
    detector.apply(state, rep(RepaymentType.DUE, due), Source(REP_TOPIC, 0, 0))
    now = datetime(2025, 1, 31, 18, tzinfo=UTC) + timedelta(days=days_late)
    applied = detector.apply(state, tx("late", now, "10.00"), Source(TX_TOPIC, 0, 0))
    assert state.alert.level >= minimum
    if minimum is Level.RED:
        assert state.alert.level is Level.RED
    (alert,) = applied.alerts
    assert alert.level is state.alert.level
    assert alert.kind is AlertKind.RAISED
    assert alert.reasons[0].code == code
    assert alert.reasons[0].value == float(days_late)


def test_rising_dpd_escalates_to_red_with_dpd_reasons() -> None:
    """One unpaid instalment: alerts escalate (never skip back) up to red, citing the DPD rule
    (SLA breaches aside: nobody answers these alerts)."""
    events: list[Event] = [rep(RepaymentType.DUE, date(2025, 1, 31), "300.00")]
    for day in range(1, 121):
        events.append(tx(f"t{day}", at(2025, 1, 31) + timedelta(days=day), "20.00"))
    alerts, states = _run(_with_sources(events))
    alerts = [a for a in alerts if not a.sla_breach]
    assert states["c1"].alert.level is Level.RED
    assert alerts[0].kind is AlertKind.RAISED
    assert all(a.kind is AlertKind.ESCALATED for a in alerts[1:])
    assert [a.level for a in alerts] == sorted({a.level for a in alerts})
    assert alerts[-1].level is Level.RED
    due = date(2025, 1, 31).toordinal()
    for alert in alerts:
        dpd = alert.event_time.toordinal() - due
        if dpd >= 30:
            assert alert.level >= Level.AMBER
            assert re.fullmatch(r"DPD_\d+_PLUS", alert.reasons[0].code)
            assert alert.reasons[0].value == float(dpd)


def test_alert_reasons_are_few_specific_and_numeric() -> None:
    """Every alert carries 1..4 reasons, each with text that names a number."""
    stream = _with_sources(
        sorted(
            [*_delinquent_story("c1"), *_delinquent_story("c2"), *random_events(600, 21, "c3")],
            key=lambda e: (e.ts, e.event_id),
        )
    )
    alerts, _ = _run(stream)
    assert alerts
    for alert in alerts:
        assert len(alert.reasons) <= MAX_REASONS
        for reason in alert.reasons:
            assert reason.code
            assert reason.text.strip()
            assert re.search(r"\d", reason.text), reason.text
        if alert.kind in (AlertKind.RAISED, AlertKind.ESCALATED):
            assert alert.reasons


def test_a_model_only_feature_is_named_by_its_text_with_the_signals_details() -> None:
    """A contribution from a feature outside the scorecard reads as its ``[texts]`` template,
    filled from the signals' details; a feature with no text at all still names its value."""
    detector = RiskDetector(load_rules(), "model-x")
    scored = Scored(
        0.6,
        (
            Contribution("inflow_1m_log", math.log1p(120), 0.9),
            Contribution("mystery_ratio", 0.25, 0.5),
        ),
    )
    reasons = detector.reasons(scored, Level.NONE, 0.0, {"inflow_1m": 120})
    assert [r.code for r in reasons] == ["INFLOW_1M_LOG", "MYSTERY_RATIO"]
    assert reasons[0].text == "little paid in over the last month (120)"
    assert reasons[1].text == "mystery ratio at 0.25"


def test_alert_trigger_and_versions_come_from_the_event() -> None:
    """An alert names its triggering message, its event time and the versions that decided it."""
    detector = RiskDetector(load_rules(), "model-x")
    state = detector.new_state("c1")
    detector.apply(state, rep(RepaymentType.DUE, date(2025, 1, 31)), Source(REP_TOPIC, 2, 7))
    ts = datetime(2025, 5, 5, tzinfo=UTC)
    (alert,) = detector.apply(state, tx("late", ts), Source(TX_TOPIC, 2, 99)).alerts
    assert (alert.trigger.event_id, alert.trigger.topic) == ("late", TX_TOPIC)
    assert (alert.trigger.partition, alert.trigger.offset) == (2, 99)
    assert alert.event_time == ts
    assert alert.model_version == "model-x"
    assert alert.rules_version == load_rules().version
    assert alert.customer_id == "c1"


def test_late_events_are_counted_and_do_not_move_the_watermark() -> None:
    """An event older than the customer's watermark is applied and counted as late."""
    detector = RiskDetector(load_rules(), "scorecard-0")
    state = detector.new_state("c1")
    detector.apply(state, tx("a", at(2025, 3, 1)), Source(TX_TOPIC, 0, 0))
    detector.apply(state, tx("b", at(2025, 2, 1)), Source(TX_TOPIC, 0, 1))
    assert state.late_events == 1
    assert state.events == 2
    assert state.watermark == at(2025, 3, 1)


def test_dpd_wakes_the_sweep_when_an_instalment_falls_overdue_then_daily() -> None:
    signal = DaysPastDue()
    signal.learn_one(rep(RepaymentType.DUE, date(2025, 3, 10)))
    before_due = datetime(2025, 3, 1, 15, tzinfo=UTC)
    assert signal.wake_at(before_due) == datetime(2025, 3, 11, tzinfo=UTC)
    assert signal.score_one(datetime(2025, 3, 11, tzinfo=UTC))["dpd"] == 1.0
    overdue = datetime(2025, 3, 20, 15, tzinfo=UTC)
    assert signal.wake_at(overdue) == datetime(2025, 3, 21, tzinfo=UTC)
    signal.learn_one(rep(RepaymentType.PAYMENT, date(2025, 3, 10), "100.00", "100.00"))
    assert signal.wake_at(overdue) is None
