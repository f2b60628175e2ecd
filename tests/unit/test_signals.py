"""Signals for regular inflow, account trends, repayment behaviour and means: contracts and
behaviour."""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from detectors.base import Signal
from detectors.conduct import AccountTrends, RepaymentBehaviour
from detectors.events import (
    Channel,
    Direction,
    Event,
    Repayment,
    RepaymentType,
    Transaction,
    TxStatus,
)
from detectors.inflow import RegularInflow
from detectors.means import Means
from streams.simulator import OUTCOMES, TRANSACTIONS, CustomerTruth, generate
from tests.unit.contract import only_json_values

START = datetime(2024, 1, 1, tzinfo=UTC)
MAX_STATE_BYTES = 200


def tx(
    ts: datetime,
    amount: str = "25.00",
    *,
    direction: Direction = Direction.DEBIT,
    channel: Channel = Channel.CARD,
    status: TxStatus = TxStatus.POSTED,
    balance_after: str | None = None,
    credit_limit: str | None = None,
    event_id: str = "t",
) -> Transaction:
    return Transaction(
        event_id=event_id,
        customer_id="c1",
        account_id="a1",
        ts=ts,
        amount=Decimal(amount),
        currency="EUR",
        direction=direction,
        channel=channel,
        status=status,
        balance_after=None if balance_after is None else Decimal(balance_after),
        credit_limit=None if credit_limit is None else Decimal(credit_limit),
    )


def salary(day: date, amount: str = "3000.00") -> Transaction:
    return tx(
        datetime(day.year, day.month, day.day, 6, tzinfo=UTC),
        amount,
        direction=Direction.CREDIT,
        channel=Channel.SALARY,
    )


def rep(
    type_: RepaymentType,
    due: date,
    paid: str = "0",
    *,
    no: int = 1,
    at: datetime | None = None,
    amount_due: str = "100.00",
) -> Repayment:
    return Repayment(
        event_id=f"r{no}{type_.value}{paid}",
        customer_id="c1",
        loan_id="L1",
        ts=at or datetime(due.year, due.month, due.day, 9, tzinfo=UTC),
        type=type_,
        instalment_no=no,
        due_date=due,
        amount_due=Decimal(amount_due),
        amount_paid=Decimal(paid),
    )


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def day_at(n: int, hour: int = 12) -> datetime:
    return START + timedelta(days=n, hours=hour)


def monthly(nominal: int, months: int, first: date = date(2024, 1, 1)) -> list[date]:
    out = []
    for m in range(months):
        year, month = first.year + (first.month - 1 + m) // 12, (first.month - 1 + m) % 12 + 1
        out.append(date(year, month, nominal))
    return out


# --------------------------------------------------------------------------- random streams

_AMOUNTS = [Decimal(n).scaleb(-2) for n in (1, 99, 2_000, 19_999, 25_000, 120_000, 250_000)]
_BALANCES = [None, *(Decimal(n).scaleb(-2) for n in (-150_000, -2_000, -1, 0, 5_000, 120_000))]
_STATUSES = [TxStatus.POSTED] * 6 + [TxStatus.RETURNED, TxStatus.REVERSED]
_THREE_YEARS = 3 * 365 * 86_400


def random_events(n: int, seed: int = 7) -> Iterator[Event]:
    """Mixed transactions and repayments spread over three years, one in ten of them late."""
    rng = random.Random(seed)
    for i in range(n):
        ts = START + timedelta(seconds=_THREE_YEARS * i // n)
        if rng.random() < 0.1:
            ts -= timedelta(days=rng.uniform(0, 45))
        if rng.random() < 0.7:
            yield Transaction(
                event_id=f"e{i}",
                customer_id="c1",
                account_id="a1",
                ts=ts,
                amount=rng.choice(_AMOUNTS),
                currency="EUR",
                direction=rng.choice(list(Direction)),
                channel=rng.choice(list(Channel)),
                status=rng.choice(_STATUSES),
                balance_after=rng.choice(_BALANCES),
                credit_limit=rng.choice((None, Decimal(0), Decimal(1000), Decimal(2500))),
            )
        else:
            yield Repayment(
                event_id=f"e{i}",
                customer_id="c1",
                loan_id=f"loan-{rng.randrange(3)}",
                ts=ts,
                type=rng.choice(list(RepaymentType)),
                instalment_no=rng.randrange(400),
                due_date=ts.date() + timedelta(days=rng.randrange(-60, 30)),
                amount_due=rng.choice(_AMOUNTS),
                amount_paid=rng.choice(_AMOUNTS),
            )


def telling_events() -> list[Event]:
    """A stream that moves all three signals: salary, overdraft, returns, a partial payment."""
    events: list[Event] = [salary(d) for d in monthly(25, 3)]
    events.append(salary(date(2024, 4, 25), "1000.00"))  # shrunk
    for n in range(120):
        events.append(tx(day_at(n), "40.00", balance_after=str(-5 * n), credit_limit="1000"))
    events.append(tx(day_at(100, 4), "60.00", status=TxStatus.RETURNED, balance_after="-500"))
    events.append(rep(RepaymentType.DUE, date(2024, 3, 10)))
    events.append(rep(RepaymentType.PAYMENT, date(2024, 3, 10), "40.00"))
    return sorted(events, key=lambda e: e.ts)


SIGNALS: list[Callable[[], Signal]] = [RegularInflow, AccountTrends, RepaymentBehaviour, Means]
SIGNAL_IDS = ["inflow", "trends", "repay_trend", "means"]
NOWS = [
    datetime(2023, 12, 1, tzinfo=UTC),
    datetime(2024, 4, 29, 23, tzinfo=UTC),
    datetime(2024, 5, 1, tzinfo=UTC),
    datetime(2024, 6, 15, 8, tzinfo=UTC),
    datetime(2027, 1, 1, tzinfo=UTC),
]


def learned(factory: Callable[[], Signal], events: list[Event]) -> Signal:
    signal = factory()
    for event in events:
        signal.learn_one(event)
    return signal


@pytest.fixture(scope="module")
def mixed() -> list[Event]:
    return [*telling_events(), *random_events(3_000, seed=3)]


@pytest.fixture(scope="module")
def long_stream() -> list[Event]:
    return list(random_events(100_000, seed=11))


# --------------------------------------------------------------------------- contract suite


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_learned_state_moves(factory: Callable[[], Signal]) -> None:
    """The telling stream changes every signal's state and features (the checks are not vacuous)."""
    signal = learned(factory, telling_events())
    assert signal.to_state() != factory().to_state()
    now = datetime(2024, 5, 1, tzinfo=UTC)
    assert any(v != 0 for v in signal.score_one(now).values())


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_learn_one_does_not_mutate_the_event(
    factory: Callable[[], Signal], mixed: list[Event]
) -> None:
    """Learning leaves every input event exactly as it was."""
    signal = factory()
    for event in mixed:
        before = copy.deepcopy(event)
        signal.learn_one(event)
        assert event == before


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_state_is_plain_json(factory: Callable[[], Signal], mixed: list[Event]) -> None:
    """to_state holds only JSON values (no events, Decimals or dates) and survives orjson."""
    state = learned(factory, mixed).to_state()
    assert only_json_values(state)
    assert orjson.loads(orjson.dumps(state)) == state


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_state_round_trip_is_exact(factory: Callable[[], Signal], mixed: list[Event]) -> None:
    """A restored signal has the identical state and features, now and after further learning."""
    original = learned(factory, mixed[:2_000])
    restored = factory()
    restored.load_state(orjson.loads(orjson.dumps(original.to_state())))
    assert orjson.dumps(restored.to_state()) == orjson.dumps(original.to_state())
    for now in NOWS:
        assert restored.score_one(now) == original.score_one(now)
    for event in mixed[2_000:]:
        original.learn_one(event)
        restored.learn_one(event)
    assert orjson.dumps(restored.to_state()) == orjson.dumps(original.to_state())
    for now in NOWS:
        assert restored.score_one(now) == original.score_one(now)


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_state_is_a_snapshot(factory: Callable[[], Signal], mixed: list[Event]) -> None:
    """A state taken earlier is not changed by later learning (no shared references)."""
    signal = learned(factory, mixed[:1_500])
    state = signal.to_state()
    frozen = orjson.dumps(state)
    for event in mixed[1_500:]:
        signal.learn_one(event)
    assert orjson.dumps(state) == frozen


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_clone_starts_fresh(factory: Callable[[], Signal], mixed: list[Event]) -> None:
    """clone() keeps the parameters and none of the learned state."""
    signal = learned(factory, mixed)
    clone = signal.clone()
    assert type(clone) is type(signal)
    assert clone.params == signal.params
    assert clone.to_state() == factory().to_state()
    assert clone.to_state() != signal.to_state()


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_score_one_is_pure(factory: Callable[[], Signal], mixed: list[Event]) -> None:
    """Scoring, at any time, changes nothing and gives the same answer twice."""
    signal = learned(factory, mixed)
    before = orjson.dumps(signal.to_state())
    for now in NOWS:
        first = signal.score_one(now)
        assert signal.score_one(now) == first
        assert all(isinstance(v, float) for v in first.values())
    assert orjson.dumps(signal.to_state()) == before


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_wake_at_is_pure_and_ahead(factory: Callable[[], Signal], mixed: list[Event]) -> None:
    """The wake-up time the sweep schedules by is a pure read and always after ``now``."""
    signal = learned(factory, mixed)
    before = orjson.dumps(signal.to_state())
    for now in NOWS:
        wake = signal.wake_at(now)
        assert wake is None or wake > now
    assert orjson.dumps(signal.to_state()) == before


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_fresh_signal_scores_zero(factory: Callable[[], Signal]) -> None:
    """A signal that has learned nothing reports every feature as 0."""
    assert all(v == 0.0 for v in factory().score_one(NOWS[2]).values())


@pytest.mark.parametrize("factory", SIGNALS, ids=SIGNAL_IDS)
def test_state_stays_small_over_a_long_stream(
    factory: Callable[[], Signal], long_stream: list[Event]
) -> None:
    """After 100k random events over three years the state never exceeded 200 bytes of JSON."""
    signal = factory()
    largest = 0
    for n, event in enumerate(long_stream):
        signal.learn_one(event)
        if n % 250 == 0:
            largest = max(largest, len(orjson.dumps(signal.to_state())))
    largest = max(largest, len(orjson.dumps(signal.to_state())))
    assert largest < MAX_STATE_BYTES, largest


# --------------------------------------------------------------------------- RegularInflow


def _scores_daily(signal: RegularInflow, events: list[Transaction], until: date) -> list[float]:
    """inflow_missing at every midnight (before that day's events), learning as it goes."""
    missing = []
    pending = sorted(events, key=lambda e: e.ts)
    day = pending[0].ts.date()
    while day <= until:
        missing.append(signal.score_one(midnight(day))["inflow_missing"])
        for event in [e for e in pending if e.ts.date() == day]:
            missing.append(signal.score_one(event.ts)["inflow_missing"])
            signal.learn_one(event)
        day += timedelta(days=1)
    return missing


def test_wandering_pay_day_and_a_holiday_delay_never_look_missing() -> None:
    """Pay days shifted +-2 days and one 4-day holiday delay never make the salary missing."""
    rng = random.Random(5)
    for _ in range(60):
        days = monthly(rng.randint(3, 26), 14)
        holiday = rng.randrange(2, len(days))
        paid = [
            d + timedelta(days=4 if i == holiday else rng.randint(-2, 2))
            for i, d in enumerate(days)
        ]
        signal = RegularInflow()
        missing = _scores_daily(signal, [salary(d) for d in paid], paid[-1])
        assert max(missing) == 0.0, paid


def test_stopped_salary_is_missing_within_period_plus_tolerance_plus_one_day() -> None:
    """A four-weekly salary that stops is missing by period + tolerance + 1 days, not before."""
    paid = [date(2024, 1, 5) + timedelta(days=28 * i) for i in range(14)]
    signal = RegularInflow()
    for d in paid:
        signal.learn_one(salary(d))
    last = paid[-1]
    assert signal.period == pytest.approx(28.0)
    on_time = signal.score_one(midnight(last + timedelta(days=28 + 5)))
    assert on_time["inflow_missing"] == 0.0
    assert on_time["inflow_overdue_days"] == 0.0
    late = signal.score_one(midnight(last + timedelta(days=28 + 5 + 1)))
    assert late["inflow_missing"] == 1.0
    assert 0.0 < late["inflow_overdue_days"] <= 1.0
    later = signal.score_one(midnight(last + timedelta(days=60)))
    assert later["inflow_overdue_days"] > 20.0


def test_inflow_wakes_the_sweep_on_the_first_day_it_is_missing() -> None:
    paid = [date(2024, 1, 5) + timedelta(days=28 * i) for i in range(14)]
    signal = RegularInflow()
    for d in paid:
        signal.learn_one(salary(d))
    wake = signal.wake_at(midnight(paid[-1]))
    assert wake is not None
    assert signal.score_one(wake)["inflow_missing"] == 1.0
    assert signal.score_one(wake - timedelta(seconds=1))["inflow_missing"] == 0.0
    assert signal.wake_at(wake) is None, "once missing, nothing more is due"


def test_stopped_monthly_salary_is_missing_after_its_effective_tolerance() -> None:
    """A calendar-monthly salary that stops is missing once period + effective tolerance pass."""
    paid = monthly(15, 12)
    signal = RegularInflow()
    for d in paid:
        signal.learn_one(salary(d))
    assert 30.0 < signal.period < 31.0
    deadline = signal.period + signal.tolerance()
    assert deadline < 40.0  # month lengths widen the tolerance by little
    before = paid[-1] + timedelta(days=int(deadline))
    after = paid[-1] + timedelta(days=int(deadline) + 1)
    assert signal.score_one(midnight(before))["inflow_missing"] == 0.0
    assert signal.score_one(midnight(after))["inflow_missing"] == 1.0


def test_weekly_pay_is_recognised() -> None:
    """Weekly credits give a 7-day period, so a stop shows within days, not a month."""
    paid = [date(2024, 1, 5) + timedelta(days=7 * i) for i in range(20)]
    signal = RegularInflow()
    for d in paid:
        signal.learn_one(salary(d, "700.00"))
    assert signal.period == pytest.approx(7.0)
    assert signal.score_one(midnight(paid[-1] + timedelta(days=9)))["inflow_missing"] == 0.0
    assert signal.score_one(midnight(paid[-1] + timedelta(days=14)))["inflow_missing"] == 1.0


def test_shrunk_salary_is_detected() -> None:
    """A salary that drops by 60% gives inflow_shrink 0.6 and is not missing."""
    paid = monthly(25, 6)
    signal = RegularInflow()
    for d in paid[:-1]:
        signal.learn_one(salary(d, "3000.00"))
    signal.learn_one(salary(paid[-1], "1200.00"))
    features = signal.score_one(midnight(paid[-1] + timedelta(days=3)))
    assert features["inflow_shrink"] == pytest.approx(0.6)
    assert features["inflow_missing"] == 0.0


def test_a_salary_paid_in_two_parts_is_one_inflow() -> None:
    """Credits on the same or next day add up to one inflow and do not distort the period."""
    signal = RegularInflow()
    for d in monthly(10, 5):
        signal.learn_one(salary(d, "2000.00"))
        signal.learn_one(salary(d + timedelta(days=1), "1000.00"))
    assert signal.last_amount == 3000.0
    assert 29.0 < signal.period < 32.0
    assert signal.score_one(midnight(date(2024, 5, 20)))["inflow_shrink"] == 0.0


def test_large_transfers_stand_in_until_a_salary_arrives() -> None:
    """Without salary, transfers of at least min_amount are the income; salary then takes over."""
    signal = RegularInflow()
    for d in monthly(3, 4):
        at = midnight(d) + timedelta(hours=9)
        signal.learn_one(tx(at, "150.00", direction=Direction.CREDIT, channel=Channel.TRANSFER))
        signal.learn_one(tx(at, "900.00", direction=Direction.CREDIT, channel=Channel.TRANSFER))
    assert not signal.from_salary and signal.last_amount == 900.0  # 150 is below min_amount
    assert signal.established
    signal.learn_one(salary(date(2024, 5, 20)))
    assert signal.from_salary and signal.count == 1 and not signal.established


def test_a_late_old_credit_does_not_move_the_schedule() -> None:
    """A salary credit older than the last inflow, outside the merging window, is ignored."""
    signal = RegularInflow()
    for d in monthly(20, 5):
        signal.learn_one(salary(d))
    before = signal.to_state()
    signal.learn_one(salary(date(2024, 3, 1)))
    assert signal.to_state() == before


def test_details_render_a_reason_text() -> None:
    """details() gives the usual amount, expected date and last amount for reason templates."""
    signal = RegularInflow()
    assert signal.details(NOWS[2]) == {}
    for n in range(5):
        signal.learn_one(salary(date(2024, 1, 5) + timedelta(days=28 * n), "2500.00"))
    details = signal.details(midnight(date(2024, 5, 20)))
    template: str = (
        "salary credit of about {inflow_expected_amount:,.0f} expected on "
        "{inflow_expected_date} not received"
    )
    text = template.format(**details)
    assert text == "salary credit of about 2,500 expected on 2024-05-24 not received"
    assert details["inflow_last_amount"] == 2500.0


# --------------------------------------------------------------------------- AccountTrends


def test_overdraft_days_count_distinct_days_and_forget_after_30() -> None:
    """Several overdrawn transactions on one day count once; days older than 30 drop out."""
    signal = AccountTrends()
    for n, hour in ((0, 9), (0, 10), (0, 11), (1, 9), (5, 9), (20, 9)):
        signal.learn_one(tx(day_at(n, hour), balance_after="-10.00"))
    signal.learn_one(tx(day_at(21), balance_after="50.00"))  # not overdrawn
    assert signal.score_one(day_at(21))["overdraft_days_30d"] == 4.0
    assert signal.score_one(day_at(29))["overdraft_days_30d"] == 4.0
    assert signal.score_one(day_at(30))["overdraft_days_30d"] == 3.0  # day 0 is 30 days old
    assert signal.score_one(day_at(49))["overdraft_days_30d"] == 1.0
    assert signal.score_one(day_at(50))["overdraft_days_30d"] == 0.0
    signal.learn_one(tx(day_at(400), balance_after="-1.00"))
    assert signal.score_one(day_at(400))["overdraft_days_30d"] == 1.0


def test_a_late_overdraft_lands_on_its_own_day() -> None:
    """A late overdrawn transaction inside the window is counted on its day, and forgotten."""
    signal = AccountTrends()
    signal.learn_one(tx(day_at(10), balance_after="5.00"))
    signal.learn_one(tx(day_at(3), balance_after="-5.00"))  # late
    assert signal.score_one(day_at(10))["overdraft_days_30d"] == 1.0
    assert signal.score_one(day_at(33))["overdraft_days_30d"] == 0.0
    signal.learn_one(tx(day_at(-40), balance_after="-5.00"))  # too late for the bitmap
    assert signal.score_one(day_at(10))["overdraft_days_30d"] == 1.0


def test_returned_payments_count_and_forget() -> None:
    """Returned payments in the last 30 days are counted, several a day, then forgotten."""
    signal = AccountTrends()
    returned = [(2, 4), (2, 5), (9, 4)]
    for n, hour in returned:
        signal.learn_one(
            tx(day_at(n, hour), "80.00", channel=Channel.DIRECT_DEBIT, status=TxStatus.RETURNED)
        )
    signal.learn_one(tx(day_at(12), "10.00"))
    assert signal.score_one(day_at(12))["returned_30d"] == 3.0
    assert signal.score_one(day_at(32))["returned_30d"] == 1.0
    assert signal.score_one(day_at(39))["returned_30d"] == 0.0


def test_utilisation_and_its_trend() -> None:
    """Utilisation is overdraft used over the limit; a rising one has a positive trend."""
    signal = AccountTrends()
    for n in range(60):
        signal.learn_one(tx(day_at(n), balance_after="100.00", credit_limit="1000"))
    steady = signal.score_one(day_at(60))
    assert steady["utilisation"] == 0.0 and steady["utilisation_trend"] == 0.0
    for n in range(60, 80):
        used = 40 * (n - 59)
        signal.learn_one(tx(day_at(n), balance_after=f"-{used}.00", credit_limit="1000"))
    rising = signal.score_one(day_at(80))
    assert rising["utilisation"] == pytest.approx(0.8)
    assert rising["utilisation_trend"] > 0.2


def _steady_flows(signal: AccountTrends, days: range, credit: str, debit: str) -> None:
    for n in days:
        if credit != "0":
            signal.learn_one(tx(day_at(n, 8), credit, direction=Direction.CREDIT))
        signal.learn_one(tx(day_at(n, 18), debit))


def test_trends_are_zero_until_min_days() -> None:
    """Net flow and spend trends stay 0 until min_days days have been seen."""
    signal = AccountTrends()
    _steady_flows(signal, range(10), "100.00", "300.00")
    _steady_flows(signal, range(10, 20), "0", "5.00")
    features = signal.score_one(day_at(20))
    assert features["spend_drop"] == 0.0 and features["net_flow_decline"] == 0.0


def test_falling_spend_and_net_flow_are_seen() -> None:
    """Spending that falls and income that stops show as spend_drop and net_flow_decline."""
    signal = AccountTrends()
    _steady_flows(signal, range(90), "100.00", "90.00")
    steady = signal.score_one(day_at(90))
    assert steady["spend_drop"] == pytest.approx(0.0, abs=1e-3)
    assert steady["net_flow_decline"] == pytest.approx(0.0, abs=1e-3)
    _steady_flows(signal, range(90, 120), "0", "30.00")
    worse = signal.score_one(day_at(120))
    assert worse["spend_drop"] > 0.3
    assert worse["net_flow_decline"] > 0.1


def test_days_without_events_count_as_zero_flow_days() -> None:
    """A jump in event time folds in the empty days, as if each had been seen with no flow."""
    jumped, walked = AccountTrends(), AccountTrends()
    for signal in (jumped, walked):
        _steady_flows(signal, range(40), "100.00", "80.00")
    for n in range(40, 70):  # one unposted transaction a day: days pass, no money moves
        walked.learn_one(tx(day_at(n), status=TxStatus.REVERSED))
    for signal in (jumped, walked):
        signal.learn_one(tx(day_at(70), "10.00"))
    a, b = jumped.score_one(day_at(75)), walked.score_one(day_at(75))
    assert a == pytest.approx(b, abs=1e-3)
    assert a["spend_drop"] > 0.5
    silent = jumped.score_one(day_at(300))  # a silent account is seen to go silent
    assert silent["spend_drop"] > 0.99


def test_a_late_event_does_not_rewrite_history() -> None:
    """A late transaction's balance does not replace the current utilisation."""
    signal = AccountTrends()
    signal.learn_one(tx(day_at(10), balance_after="-100.00", credit_limit="1000"))
    signal.learn_one(tx(day_at(2), balance_after="-900.00", credit_limit="1000"))
    assert signal.score_one(day_at(10))["utilisation"] == pytest.approx(0.1)


# --------------------------------------------------------------------------- RepaymentBehaviour


def _instalments(
    signal: RepaymentBehaviour, dues: list[date], paid: list[str], lag_days: int = 0
) -> None:
    for no, (due, amount) in enumerate(zip(dues, paid, strict=True), start=1):
        signal.learn_one(rep(RepaymentType.DUE, due, no=no, at=midnight(due)))
        if amount != "0":
            at = midnight(due) + timedelta(days=lag_days, hours=10)
            signal.learn_one(rep(RepaymentType.PAYMENT, due, amount, no=no, at=at))


def test_full_payments_give_no_signal() -> None:
    """Instalments paid in full, a day or two late, give no decline, partials or cures."""
    signal = RepaymentBehaviour()
    _instalments(signal, monthly(10, 8), ["100.00"] * 8, lag_days=2)
    assert signal.score_one(midnight(date(2024, 9, 1))) == {
        "payment_ratio_decline": 0.0,
        "cures": 0.0,
        "partial_payments_90d": 0.0,
    }


def test_partial_and_missed_payments_show_a_decline() -> None:
    """Partial then missed instalments raise the decline and count partials for 90 days."""
    signal = RepaymentBehaviour()
    dues = monthly(10, 9)
    _instalments(signal, dues, ["100.00"] * 6 + ["50.00", "20.00", "0"])
    features = signal.score_one(midnight(date(2024, 9, 25)))
    assert features["payment_ratio_decline"] > 0.3
    assert features["partial_payments_90d"] == 2.0
    assert signal.score_one(midnight(date(2024, 10, 10)))["partial_payments_90d"] == 1.0
    assert signal.score_one(midnight(date(2024, 11, 10)))["partial_payments_90d"] == 0.0


def test_a_cure_is_counted() -> None:
    """An instalment judged short and later paid in full counts as a cure."""
    signal = RepaymentBehaviour()
    due = date(2024, 3, 10)
    signal.learn_one(rep(RepaymentType.DUE, due, at=midnight(due)))
    signal.learn_one(rep(RepaymentType.PAYMENT, due, "100.00", at=midnight(due) + timedelta(40)))
    assert signal.score_one(midnight(date(2024, 4, 20)))["cures"] == 1.0


def test_a_reversed_payment_counts_against_the_ratio() -> None:
    """A payment reversed after settling re-opens the instalment and lowers the ratio."""
    signal = RepaymentBehaviour()
    dues = monthly(10, 6)
    _instalments(signal, dues, ["100.00"] * 6)
    last = dues[-1]
    signal.learn_one(
        rep(RepaymentType.REVERSAL, last, "100.00", no=6, at=midnight(last) + timedelta(4))
    )
    assert signal.score_one(midnight(last + timedelta(days=5)))["payment_ratio_decline"] > 0.3


# --------------------------------------------------------------------------- Means


def test_means_sum_the_latest_limit_of_each_account() -> None:
    """The limit is the sum over accounts, each at its latest value; a fifth account pushes out
    the one not heard from longest."""
    signal = Means()
    for n, (account, limit) in enumerate([("a1", "1000"), ("a2", "500"), ("a1", "2000")]):
        event = tx(day_at(n), credit_limit=limit)
        signal.learn_one(dataclasses.replace(event, account_id=account))
    assert signal.score_one(day_at(3))["credit_limit_log"] == pytest.approx(math.log1p(2500))
    for n, account in enumerate(["b1", "b2", "b3"], start=3):
        signal.learn_one(dataclasses.replace(tx(day_at(n), credit_limit="1"), account_id=account))
    assert signal.score_one(day_at(9))["credit_limit_log"] == pytest.approx(math.log1p(2003))


def test_means_count_posted_credits_in_the_last_month_and_quarter() -> None:
    """Credits of day 0, 40 and 80 (card refunds, returned credits and debits left out): the
    month (31 days) holds only the newest; the quarter (92 days) loses day 0 on day 92."""
    signal = Means()
    for n, amount in [(0, "100.00"), (40, "300.00"), (80, "1000.00")]:
        signal.learn_one(tx(day_at(n), amount, direction=Direction.CREDIT, channel=Channel.SALARY))
    ignored = [
        tx(day_at(81), "5000.00", direction=Direction.CREDIT),  # a card refund
        tx(day_at(82), "5000.00", direction=Direction.CREDIT, status=TxStatus.RETURNED),
        tx(day_at(83), "5000.00"),
    ]
    for event in ignored:
        signal.learn_one(event)
    features = signal.score_one(day_at(91))
    assert features["inflow_1m_log"] == pytest.approx(math.log1p(1000))
    assert features["inflow_3m_log"] == pytest.approx(math.log1p(1400))
    assert signal.score_one(day_at(92))["inflow_3m_log"] == pytest.approx(math.log1p(1300))
    assert signal.score_one(day_at(111))["inflow_1m_log"] == 0.0


def test_means_merge_the_oldest_credit_days_when_full() -> None:
    """Beyond max_days day totals the two oldest merge onto the older day: money may leave the
    quarter early, never stay late; the total is kept meanwhile."""
    signal = Means(max_days=3)
    for n in range(4):
        signal.learn_one(
            tx(day_at(n * 10), "10.00", direction=Direction.CREDIT, channel=Channel.TRANSFER)
        )
    assert signal.credits == [
        [day_at(0).toordinal(), 20],
        [day_at(20).toordinal(), 10],
        [day_at(30).toordinal(), 10],
    ]
    assert signal.score_one(day_at(91))["inflow_3m_log"] == pytest.approx(math.log1p(40))
    assert signal.score_one(day_at(92))["inflow_3m_log"] == pytest.approx(math.log1p(20))


# --------------------------------------------------------------------------- simulator data


@dataclass
class _Run:
    truth: CustomerTruth
    before_30dpd: dict[str, float]  # largest value of each feature before first_30dpd
    ever: dict[str, float]  # largest value over the whole period
    state_bytes: int


@pytest.fixture(scope="module")
def generated() -> list[_Run]:
    return run_generated()


def _event(stream: str, d: dict[str, Any]) -> Event:
    """A generated message as a domain event (the simulator's output is valid: no checks)."""
    ts = datetime.fromisoformat(d["ts"])
    if stream == TRANSACTIONS:
        balance = d.get("balance_after")
        limit = d.get("credit_limit")
        return Transaction(
            event_id=d["event_id"],
            customer_id=d["customer_id"],
            account_id=d["account_id"],
            ts=ts,
            amount=Decimal(d["amount"]),
            currency=d["currency"],
            direction=Direction(d["direction"]),
            channel=Channel(d["channel"]),
            status=TxStatus(d["status"]),
            mcc=d.get("mcc"),
            balance_after=None if balance is None else Decimal(balance),
            credit_limit=None if limit is None else Decimal(limit),
        )
    return Repayment(
        event_id=d["event_id"],
        customer_id=d["customer_id"],
        loan_id=d["loan_id"],
        ts=ts,
        type=RepaymentType(d["type"]),
        instalment_no=d["instalment_no"],
        due_date=date.fromisoformat(d["due_date"]),
        amount_due=Decimal(d["amount_due"]),
        amount_paid=Decimal(d["amount_paid"]),
    )


def run_generated() -> list[_Run]:
    """Every customer of a generated stream, scored at each midnight (before that day's events)."""
    stream = generate(customers=300, days=300, seed=11, deteriorating_share=0.35, malformed=0)
    events: dict[str, list[Event]] = defaultdict(list)
    for message in stream.messages:
        if message.stream == OUTCOMES:
            continue
        events[message.key.decode()].append(_event(message.stream, orjson.loads(message.value)))
    runs = []
    for customer_id, customer_events in events.items():
        truth = stream.truth[customer_id]
        cutoff = None if truth.first_30dpd is None else midnight(truth.first_30dpd)
        signals: list[Signal] = [RegularInflow(), AccountTrends(), RepaymentBehaviour(), Means()]
        before: dict[str, float] = defaultdict(float)
        ever: dict[str, float] = defaultdict(float)
        day = None
        for event in customer_events:
            if event.ts.date() != day:
                day = event.ts.date()
                now = midnight(day)
                for signal in signals:
                    for name, value in signal.score_one(now).items():
                        ever[name] = max(ever[name], value)
                        if cutoff is None or now < cutoff:
                            before[name] = max(before[name], value)
            for signal in signals:
                signal.learn_one(event)
        size = max(len(orjson.dumps(s.to_state())) for s in signals)
        runs.append(_Run(truth, dict(before), dict(ever), size))
    return runs


def test_generated_deterioration_shows_in_inflow_before_30dpd(generated: list[_Run]) -> None:
    """At least 80% of customers paid on a schedule (salary, pension, allowance) who reach 30 DPD
    after losing their job showed the income missing or shrunk before. (A slow decline shrinks
    it by steps too small for a 40 % drop; a self-employed customer has no schedule to miss.)"""
    bad = [
        r
        for r in generated
        if r.truth.path == "job_loss"
        and r.truth.profile != "self_employed"
        and r.truth.first_30dpd is not None
    ]
    assert len(bad) >= 10
    flagged = [
        r
        for r in bad
        if r.before_30dpd["inflow_missing"] > 0 or r.before_30dpd["inflow_shrink"] > 0.4
    ]
    assert len(flagged) >= 0.8 * len(bad), (len(flagged), len(bad))


def test_generated_healthy_customers_keep_their_salary(generated: list[_Run]) -> None:
    """At most 5% of healthy customers (the self-employed's irregular client payments included)
    ever have a missing regular income or a shrink above 0.4."""
    healthy = [r for r in generated if not r.truth.deteriorates]
    assert len(healthy) >= 150
    assert any(r.truth.profile == "self_employed" for r in healthy)
    missing = [r for r in healthy if r.ever["inflow_missing"] > 0]
    shrunk = [r for r in healthy if r.ever["inflow_shrink"] > 0.4]
    assert len(missing) <= 0.05 * len(healthy)
    assert len(shrunk) <= 0.05 * len(healthy)


def test_generated_conduct_separates_deteriorating_customers(generated: list[_Run]) -> None:
    """Overdraft days, returns and the repayment trend are markedly higher before 30 DPD."""
    bad = [r for r in generated if r.truth.deteriorates and r.truth.first_30dpd is not None]
    healthy = [r for r in generated if not r.truth.deteriorates]

    def median(runs: list[_Run], name: str, ever: bool = False) -> float:
        return statistics.median((r.ever if ever else r.before_30dpd)[name] for r in runs)

    def share(runs: list[_Run], name: str, ever: bool = False) -> float:
        return sum(1 for r in runs if (r.ever if ever else r.before_30dpd)[name] > 0) / len(runs)

    assert median(bad, "overdraft_days_30d") >= 5.0
    assert median(healthy, "overdraft_days_30d", ever=True) <= 1.0
    assert share(bad, "returned_30d") >= 0.6
    assert share(healthy, "returned_30d", ever=True) <= 0.1
    assert share(bad, "payment_ratio_decline") >= 0.8
    assert share(healthy, "payment_ratio_decline", ever=True) <= 0.05
    assert share(healthy, "partial_payments_90d", ever=True) <= 0.05
    assert median(bad, "utilisation_trend") > 2 * median(healthy, "utilisation_trend", True)


def test_generated_states_stay_small(generated: list[_Run]) -> None:
    """On realistic data each signal's state stays well under 200 bytes of JSON."""
    assert max(r.state_bytes for r in generated) < 150
