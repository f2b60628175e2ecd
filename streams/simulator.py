"""A synthetic bank, day by day: the input streams its customers produce, and the ground truth.

:func:`simulate` yields Kafka messages in merge order (event time, then outcome < repayment <
transaction, then ``event_id``) one day at a time, so a million customers stream in bounded memory
(a few hundred bytes of state per customer); :func:`generate` collects a small run in memory.
Everything is drawn from one ``random.Random(seed)`` in a fixed order: no wall clock, no
environment, so the same arguments always give byte-identical output.

**Customers.** A profile (salaried 58 %, self-employed 12 %, student 10 %, retired 20 %) decides
income: a salary on a fixed day of the month, moved to the business day before when that day is a
weekend or a public holiday, with a December bonus for some; a pension; irregular client payments
for the self-employed; a monthly allowance for students. Everyone has a current account (opening
savings, an overdraft limit, direct debits for rent, utilities, phone and insurance, card spending
by merchant category with weekly and monthly seasonality, a December peak, ATM withdrawals,
occasional large purchases and summer travel). Most have an instalment loan (a ``due`` event on
each due date, paid by direct debit from the account, so a short balance returns the debit and
leaves the instalment unpaid until the customer can pay it); about half have a credit card whose
monthly statement falls due as a minimum payment on the card's loan and is paid in full or in part.

**Deterioration.** A ``deteriorating_share`` of customers goes down one of four paths from an
onset day (a tenth to two thirds into the period) at a customer-specific speed:

- ``job_loss``: the income stops; spending shrinks slowly; savings drain, then the overdraft,
  then direct debits and instalments bounce;
- ``over_indebted``: spending climbs beyond income, card minimum payments only, cash advances and
  gambling, then missed instalments;
- ``shock``: one large unavoidable expense (medical, car) empties the account at once;
- ``slow_decline``: the income shrinks month by month while spending does not.

A ``recovery_share`` of them recover (income back, arrears paid when money allows). Loans fall
30 and 90 days past due when the money runs out; the bank declares a ``default`` outcome at 90
days past due, and ``cured`` if the arrears are then paid.

**Truth.** Per customer: profile, products, path, onset, whether and when they recover, the first
day their end-of-day days past due (days since the oldest instalment not fully paid, over all
their loans) reached 30 and 90, and the default declaration. A ``malformed`` count of broken
messages (or a ``malformed_share``) is mixed in, flagged and keyed so that they route like the rest.

Wire contract v1 (README, "Topics and schemas"): ``schema_version`` 1, RFC 3339 UTC times, money
as decimal strings.
"""

from __future__ import annotations

import base64
import math
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import orjson

from config.settings import Topics
from streams.replay import STREAM_RANK, Recorded

TRANSACTIONS = "transactions"
REPAYMENTS = "repayments"
OUTCOMES = "outcomes"
SCHEMA_VERSION = 1
CURRENCY = "EUR"
GAMBLING_MCC = "7995"
PROFILES = ("salaried", "self_employed", "student", "retired")
PATHS = ("job_loss", "over_indebted", "shock", "slow_decline")
MALFORMED_KINDS = (
    "not_json",
    "json_array",
    "missing_customer_id",
    "negative_amount",
    "unknown_enum",
    "non_utc_timestamp",
    "unparsable_timestamp",
    "wrong_type",
    "schema_version_2",
)

_PROFILE_WEIGHTS = (58, 12, 10, 20)
SPEND_OVERHEAD = 1.45  # spending per planned unit: ATM cash, large purchases, travel, December
_PATH_WEIGHTS = (35, 30, 15, 20)
_DAY = 86_400
_FEE = 15_00  # a returned direct debit, in cents
_MERCHANTS = (  # (mcc, counterparty, weight)
    ("5411", "supermarket", 40),
    ("5812", "restaurant", 15),
    ("5541", "fuel-station", 10),
    ("5912", "pharmacy", 5),
    ("5651", "clothing-store", 8),
    ("4111", "public-transport", 10),
    ("5999", "online-shop", 12),
)
_LARGE = (("5732", "electronics-store"), ("5712", "furniture-store"), ("7538", "car-repair"))
_TRAVEL = (("4511", "airline"), ("7011", "hotel"))


@dataclass(frozen=True, slots=True)
class GeneratedMessage:
    """One Kafka message: logical stream, key (customer id, UTF-8) and value bytes; ``sort_id``
    (the event id) breaks ties of the merge order."""

    stream: str
    key: bytes
    value: bytes
    event_time: datetime
    sort_id: str
    malformed: bool = False


@dataclass(slots=True)
class CustomerTruth:
    """What really happens to a customer (``onset`` is midnight UTC of the onset day)."""

    customer_id: str
    profile: str
    products: tuple[str, ...]
    deteriorates: bool
    path: str | None
    onset: datetime | None
    recovers_on: date | None
    first_30dpd: date | None = None
    first_90dpd: date | None = None
    default_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "profile": self.profile,
            "products": list(self.products),
            "deteriorates": self.deteriorates,
            "path": self.path,
            "onset": None if self.onset is None else _rfc3339(self.onset),
            "recovers_on": None if self.recovers_on is None else self.recovers_on.isoformat(),
            "first_30dpd": None if self.first_30dpd is None else self.first_30dpd.isoformat(),
            "first_90dpd": None if self.first_90dpd is None else self.first_90dpd.isoformat(),
            "default_at": None if self.default_at is None else _rfc3339(self.default_at),
        }


@dataclass(frozen=True, slots=True)
class GeneratedStream:
    """Messages in merge order, and the truth per customer."""

    messages: list[GeneratedMessage]
    truth: dict[str, CustomerTruth]


@dataclass(frozen=True, slots=True)
class Simulation:
    customers: int = 10_000
    days: int = 365
    seed: int = 7
    deteriorating_share: float = 0.12
    recovery_share: float = 0.25
    malformed: int = 0
    malformed_share: float = 0.0
    start: date = date(2025, 1, 1)

    def __post_init__(self) -> None:
        if self.customers < 1 or self.days < 1 or self.malformed < 0:
            raise ValueError("customers and days must be >= 1 and malformed >= 0")
        for name in ("deteriorating_share", "recovery_share", "malformed_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")


def input_topic(topics: Topics, stream: str) -> str:
    """The input topic a generated message of ``stream`` belongs on."""
    return {TRANSACTIONS: topics.transactions, REPAYMENTS: topics.repayments}.get(
        stream, topics.outcomes
    )


def as_recorded(messages: Iterable[GeneratedMessage], topics: Topics) -> list[Recorded]:
    """Generated messages as the offline replay reads them."""
    return [Recorded(input_topic(topics, m.stream), m.key, m.value) for m in messages]


def generate(
    *,
    customers: int = 100,
    days: int = 180,
    seed: int = 7,
    deteriorating_share: float = 0.2,
    recovery_share: float = 0.0,
    malformed: int = 5,
    start: date = date(2025, 1, 1),
) -> GeneratedStream:
    """A small simulation, in memory (see :class:`Simulation` for the parameters)."""
    truth: dict[str, CustomerTruth] = {}
    simulation = Simulation(
        customers, days, seed, deteriorating_share, recovery_share, malformed, 0.0, start
    )
    messages = list(simulate(simulation, truth))
    return GeneratedStream(messages=messages, truth=truth)


def simulate(sim: Simulation, truth: dict[str, CustomerTruth]) -> Iterator[GeneratedMessage]:
    """Messages in merge order, a day at a time; ``truth`` is filled in as the days pass."""
    rng = random.Random(sim.seed)
    breaker = random.Random(sim.seed ^ 0x5EED)  # its own draws: malformed messages change no truth
    bank = [_Customer(rng, n, sim) for n in range(1, sim.customers + 1)]
    for customer in bank:
        truth[customer.id] = customer.truth
    epoch = _midnight(sim.start)
    malformed_days = _spread(sim.malformed, sim.days)
    broken = 0  # malformed messages so far: numbers them and cycles their kinds
    for index in range(sim.days):
        day = sim.start + timedelta(days=index)
        today = _Day(index, day, epoch + timedelta(days=index), rng)
        for customer in bank:
            customer.live(today)
        bad = malformed_days.get(index, 0)
        if sim.malformed_share > 0:
            bad += _binomial(breaker, len(today.out), sim.malformed_share)
        for _ in range(bad):
            broken += 1
            today.add_malformed(breaker, breaker.choice(bank).id, broken)
        today.out.sort(key=lambda m: (m.event_time, STREAM_RANK[m.stream], m.sort_id))
        yield from today.out


# --------------------------------------------------------------------------- one day


class _Day:
    """The day being simulated: its date, calendar facts and the messages it produced."""

    def __init__(self, index: int, day: date, midnight: datetime, rng: random.Random) -> None:
        self.index = index
        self.date = day
        self.midnight = midnight
        self.rng = rng
        self.text = day.isoformat()
        self.weekend = day.weekday() >= 5
        self.season = 1.3 if day.month == 12 else 1.0
        self.out: list[GeneratedMessage] = []

    def at(self, second: int) -> tuple[str, datetime]:
        second = min(max(second, 0), _DAY - 1)
        hours, rest = divmod(second, 3600)
        ts = f"{self.text}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}Z"
        return ts, self.midnight + timedelta(seconds=second)

    def emit(self, stream: str, customer_id: str, second: int, payload: dict[str, Any]) -> None:
        ts, moment = self.at(second)
        payload["ts"] = ts
        body = {"schema_version": SCHEMA_VERSION, **payload}
        self.out.append(
            GeneratedMessage(
                stream, customer_id.encode(), orjson.dumps(body), moment, payload["event_id"]
            )
        )

    def add_malformed(self, rng: random.Random, customer_id: str, number: int) -> None:
        """Broken message ``number`` (from 1): kinds in turn, streams alternating."""
        kind = MALFORMED_KINDS[number % len(MALFORMED_KINDS)]
        stream = TRANSACTIONS if number % 2 else REPAYMENTS
        ts, moment = self.at(rng.randint(9 * 3600, 17 * 3600))
        event_id = f"bad-{customer_id}-{self.text}-{number}"
        value = _break(kind, stream, _plausible(stream, customer_id, event_id, ts), moment)
        self.out.append(
            GeneratedMessage(stream, customer_id.encode(), value, moment, event_id, True)
        )


# --------------------------------------------------------------------------- customers


@dataclass(slots=True)
class _Loan:
    """An instalment loan or a card's minimum payments: open instalments and their arrears."""

    loan_id: str
    due_day: int
    instalment: int  # cents; for a card, recomputed from the balance each statement
    number: int
    unpaid: dict[int, list[Any]] = field(default_factory=dict)  # no -> [due date, due, paid]

    def oldest_unpaid(self) -> date | None:
        return min((entry[0] for entry in self.unpaid.values()), default=None)


class _Customer:
    """One customer's fixed profile and running state (money in cents)."""

    __slots__ = (
        "account", "balance", "bills", "bonus", "card", "card_balance", "card_limit",
        "card_share", "daily_spend", "defaulted", "employer", "full_payer", "id", "income",
        "limit", "limit_text", "loan", "onset", "path", "pay_day", "profile", "recover_day",
        "seq", "shock", "speed", "spend_rate", "truth",
    )  # fmt: skip

    def __init__(self, rng: random.Random, n: int, sim: Simulation) -> None:
        self.id = f"c{n:06d}" if sim.customers >= 10_000 else f"c{n:04d}"
        self.account = f"acct-{self.id}"
        self.profile = rng.choices(PROFILES, _PROFILE_WEIGHTS)[0]
        self.income = _cents(_draw_income(rng, self.profile))
        self.pay_day = rng.randint(1, 28)
        self.bonus = self.profile == "salaried" and rng.random() < 0.3
        self.employer = f"employer-{rng.randint(1, 400):03d}"
        self.limit = rng.choice((0, 250, 500, 1000, 1500)) * 100
        if self.profile == "student":
            self.limit = min(self.limit, 250_00)
        self.limit_text = _money(self.limit)
        self.balance = _cents(self.income / 100 * rng.uniform(0.3, 2.5))
        rent_share = {"retired": 0.15, "student": 0.35}.get(self.profile, 0.27)
        self.bills = (
            (rng.randint(1, 5), _cents(self.income / 100 * rent_share), "6513", "landlord"),
            (rng.randint(10, 20), _cents(rng.uniform(50, 140)), "4900", "utility"),
            (rng.randint(15, 28), _cents(rng.uniform(20, 55)), "4814", "telecom"),
            (rng.randint(5, 25), _cents(rng.uniform(15, 60)), "6300", "insurance"),
        )
        has_loan = rng.random() < (0.25 if self.profile == "student" else 0.7)
        instalment = min(_cents(550), round(self.income * rng.uniform(0.06, 0.2)))
        self.loan = (
            _Loan(f"loan-{self.id}", rng.randint(1, 28), instalment, rng.randint(1, 40))
            if has_loan
            else None
        )
        # What is left after bills and the loan, of which a healthy customer spends 50-75 %:
        # card payments, ATM cash and the odd large purchase (SPEND_OVERHEAD: seasonality, ATM).
        spare = self.income - sum(b[1] for b in self.bills) - (instalment if has_loan else 0)
        self.daily_spend = max(3_00, round(spare * rng.uniform(0.5, 0.75) / 30.4 / SPEND_OVERHEAD))
        self.spend_rate = rng.uniform(0.3, 0.7)  # card payments per day, before seasonality
        has_card = rng.random() < (0.15 if self.profile == "student" else 0.5)
        self.card = _Loan(f"card-{self.id}", rng.randint(1, 28), 0, 1) if has_card else None
        self.card_balance = 0
        self.card_limit = rng.choice((1000, 2000, 3000, 5000)) * 100
        self.card_share = rng.uniform(0.3, 0.6) if has_card else 0.0
        self.full_payer = rng.random() < 0.7
        self.path: str | None = None
        self.onset = -1
        self.speed = 1.0
        self.recover_day = -1
        if rng.random() < sim.deteriorating_share:
            self.path = rng.choices(PATHS, _PATH_WEIGHTS)[0]
            self.onset = rng.randint(sim.days // 10, max(sim.days // 10, 2 * sim.days // 3))
            self.speed = rng.uniform(0.6, 1.8)
            if rng.random() < sim.recovery_share:
                self.recover_day = self.onset + rng.randint(45, 150)
        self.shock = _cents(self.income / 100 * rng.uniform(1.5, 3.5))
        self.seq = 0
        self.defaulted = False
        products = (
            ("current_account",)
            + (("instalment_loan",) if self.loan else ())
            + (("credit_card",) if self.card else ())
        )
        self.truth = CustomerTruth(
            customer_id=self.id,
            profile=self.profile,
            products=products,
            deteriorates=self.path is not None,
            path=self.path,
            onset=None if self.path is None else _midnight(sim.start + timedelta(self.onset)),
            recovers_on=(
                None if self.recover_day < 0 else sim.start + timedelta(days=self.recover_day)
            ),
        )

    # ------------------------------------------------------------------ the day

    def live(self, day: _Day) -> None:
        stage = self._stage(day.index)
        self._income(day, stage)
        self._bills(day)
        self._loan_due(day)
        self._card_statement(day)
        self._spend(day, stage)
        self._pay_arrears(day, stage)
        self._truth(day)

    def _stage(self, index: int) -> float:
        """0 while healthy or recovered; else how far down the path, 0..1 (speed-scaled)."""
        if self.path is None or index < self.onset:
            return 0.0
        if 0 <= self.recover_day <= index:
            return 0.0
        return min(1.0, (index - self.onset + 1) * self.speed / 120)

    def _income(self, day: _Day, stage: float) -> None:
        rng = day.rng
        amount = 0
        channel, counterparty = "salary", self.employer
        cut = 1.0
        if self.path == "job_loss" and stage > 0:
            cut = 0.0
        elif self.path == "slow_decline" and stage > 0:
            cut = max(0.25, 1.0 - 0.9 * stage)
        if self.profile in ("salaried", "retired"):
            if is_payday(day.date, self.pay_day):
                amount = round(self.income * cut)
                if self.profile == "retired":
                    counterparty = "pension-fund"
                elif self.bonus and day.date.month == 12:
                    amount += round(self.income * 0.8 * cut)
        elif self.profile == "student":
            if day.date.day == self.pay_day:
                amount, channel, counterparty = round(self.income * cut), "transfer", "family"
        elif rng.random() < 3.5 / 30.4:  # self-employed: about 3.5 client payments a month
            amount = round(self.income / 3.5 * rng.lognormvariate(-0.18, 0.6) * cut)
            channel, counterparty = "transfer", f"client-{rng.randint(1, 40):02d}"
        if amount > 0:
            self.balance += amount
            self._tx(
                day, rng.randint(5 * 3600, 8 * 3600), "credit", channel, amount, None, counterparty
            )

    def _bills(self, day: _Day) -> None:
        for bill_day, amount, mcc, counterparty in self.bills:
            if day.date.day == bill_day:
                self._debit(
                    day,
                    day.rng.randint(3 * 3600, 5 * 3600),
                    "direct_debit",
                    amount,
                    mcc,
                    counterparty,
                )

    def _loan_due(self, day: _Day) -> None:
        loan = self.loan
        if loan is None or day.date.day != loan.due_day:
            return
        number = loan.number
        loan.number += 1
        self._repayment(day, 0, loan, "due", number, day.date, loan.instalment, 0)
        loan.unpaid[number] = [day.date, loan.instalment, 0]
        second = day.rng.randint(6 * 3600, 9 * 3600)
        if self._debit(day, second, "direct_debit", loan.instalment, "6012", "bank-loan"):
            self._pay(day, second + 1, loan, number, loan.instalment)

    def _card_statement(self, day: _Day) -> None:
        card = self.card
        if card is None or day.date.day != card.due_day or self.card_balance <= 0:
            return
        minimum = min(self.card_balance, max(25_00, self.card_balance // 20))
        number = card.number
        card.number += 1
        card.instalment = minimum
        self._repayment(day, 0, card, "due", number, day.date, minimum, 0)
        card.unpaid[number] = [day.date, minimum, 0]
        stressed = self._stage(day.index) > 0
        wanted = self.card_balance if self.full_payer and not stressed else minimum
        if not stressed and not self.full_payer:
            wanted = max(minimum, min(self.card_balance, self.card_balance * 3 // 10))
        second = day.rng.randint(6 * 3600, 9 * 3600)
        if self._debit(day, second, "direct_debit", wanted, "6012", "card-repayment"):
            self.card_balance -= wanted
            self._pay(day, second + 1, card, number, min(wanted, minimum))

    def _spend(self, day: _Day, stage: float) -> None:
        rng = day.rng
        rate = self.spend_rate * day.season * (1.4 if day.weekend else 1.0)
        if (day.date.day - self.pay_day) % 31 < 5:
            rate *= 1.3  # just after payday
        size = self.daily_spend / self.spend_rate / 1.17  # the mean of the rate's factors
        if self.path == "job_loss" and stage > 0:
            size *= max(0.55, 1.0 - 0.6 * stage)
        elif self.path == "over_indebted" and stage > 0:
            size *= 1.0 + 2.5 * stage
        if self.path != "over_indebted" or stage == 0:  # people spend less when money is short
            if self.balance < 0:
                size *= 0.5
            elif self.balance < self.income // 5:
                size *= 0.75
        for _ in range(_poisson(rng, rate)):
            second = rng.randint(7 * 3600, 22 * 3600)
            amount = _lognormal_cents(rng, size, 0.7)
            mcc, counterparty = _merchant(rng)
            if self.path == "over_indebted" and stage > 0.15 and rng.random() < 0.35 * stage:
                mcc, counterparty = GAMBLING_MCC, "online-betting"
                second = rng.randint(19 * 3600, _DAY - 1)
            if self.card is not None and rng.random() < self.card_share:
                self._card_purchase(day, second, amount, mcc, counterparty)
            else:
                self._debit(day, second, "card", amount, mcc, counterparty)
        if rng.random() < 3 / 30.4:  # ATM cash: about 0.3 of a day's spending a day
            cash = _lognormal_cents(rng, self.daily_spend * 3, 0.4)
            amount = max(20, round(cash / 1000) * 10) * 100
            self._debit(day, rng.randint(8 * 3600, 21 * 3600), "atm", amount, "6011", "atm")
        if rng.random() < 1 / 150:  # an occasional large purchase
            mcc, counterparty = _LARGE[rng.randrange(len(_LARGE))]
            amount = _cents(self.income / 100 * rng.uniform(0.2, 0.6))
            self._debit(day, rng.randint(10 * 3600, 19 * 3600), "card", amount, mcc, counterparty)
        if day.date.month in (7, 8) and rng.random() < 1 / 45:  # summer travel
            mcc, counterparty = _TRAVEL[rng.randrange(len(_TRAVEL))]
            amount = _cents(self.income / 100 * rng.uniform(0.15, 0.5))
            self._debit(day, rng.randint(9 * 3600, 21 * 3600), "card", amount, mcc, counterparty)
        if stage > 0.2 and self.path in ("job_loss", "over_indebted") and rng.random() < 0.1:
            amount = rng.choice((50, 100, 150, 200)) * 100
            if self.card is not None:
                self._card_purchase(
                    day,
                    rng.randint(9 * 3600, 22 * 3600),
                    amount,
                    "6010",
                    "atm-cash-advance",
                    channel="cash_advance",
                )
            else:
                self._debit(
                    day,
                    rng.randint(9 * 3600, 22 * 3600),
                    "cash_advance",
                    amount,
                    "6010",
                    "atm-cash-advance",
                )
        if self.path == "shock" and day.index == self.onset:
            self._debit(
                day,
                rng.randint(10 * 3600, 16 * 3600),
                "transfer",
                self.shock,
                "8062",
                "hospital",
                force=True,
            )

    def _pay_arrears(self, day: _Day, stage: float) -> None:
        """Pay overdue instalments, oldest first, when the account can bear them."""
        for loan in (self.loan, self.card):
            if loan is None:
                continue
            for number, (due_date, due, paid) in sorted(
                loan.unpaid.items(), key=lambda item: item[1][0]
            ):
                if due_date >= day.date:
                    continue
                owed = due - paid
                reserve = (
                    0 if stage == 0 else self.income // (2 if self.path == "over_indebted" else 4)
                )
                spare = self.balance + self.limit - reserve
                if spare >= owed:
                    second = day.rng.randint(10 * 3600, 20 * 3600)
                    if self._debit(day, second, "transfer", owed, "6012", "bank-loan"):
                        self._pay(day, second + 1, loan, number, owed)
                elif stage > 0 and spare > owed // 4 and day.rng.random() < 0.15:
                    part = max(1_00, spare // 2)
                    second = day.rng.randint(10 * 3600, 20 * 3600)
                    if self._debit(day, second, "transfer", part, "6012", "bank-loan"):
                        self._pay(day, second + 1, loan, number, part)
                break  # one loan's oldest instalment a day

    def _truth(self, day: _Day) -> None:
        oldest = [
            d
            for loan in (self.loan, self.card)
            if loan is not None
            if (d := loan.oldest_unpaid()) is not None and d < day.date
        ]
        dpd = (day.date - min(oldest)).days if oldest else 0
        truth = self.truth
        if dpd >= 30 and truth.first_30dpd is None:
            truth.first_30dpd = day.date
        if dpd >= 90 and truth.first_90dpd is None:
            truth.first_90dpd = day.date
        if dpd >= 90 and not self.defaulted:
            self.defaulted = True
            truth.default_at = truth.default_at or day.midnight + timedelta(hours=23)
            self._outcome(day, 23 * 3600, "default")
        elif self.defaulted and dpd == 0:
            self.defaulted = False
            self._outcome(day, 23 * 3600 + 60, "cured")

    # ------------------------------------------------------------------ messages

    def _next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}-{self.id}-{self.seq:06d}"

    def _debit(
        self,
        day: _Day,
        second: int,
        channel: str,
        amount: int,
        mcc: str | None,
        counterparty: str,
        *,
        force: bool = False,
    ) -> bool:
        """A debit from the current account: posted if the overdraft allows (or ``force``d),
        else a returned direct debit with its fee, or a declined card payment (no message)."""
        if force or self.balance - amount >= -self.limit:
            self.balance -= amount
            self._tx(day, second, "debit", channel, amount, mcc, counterparty)
            return True
        if channel == "direct_debit":
            self._tx(day, second, "debit", channel, amount, mcc, counterparty, status="returned")
            self.balance -= _FEE
            self._tx(day, second + 60, "debit", "fee", _FEE, None, "bank")
        return False

    def _card_purchase(
        self,
        day: _Day,
        second: int,
        amount: int,
        mcc: str,
        counterparty: str,
        channel: str = "card",
    ) -> None:
        if self.card_balance + amount > self.card_limit:
            self._debit(day, second, channel, amount, mcc, counterparty)
            return
        self.card_balance += amount
        payload = {
            "event_id": self._next_id("tx"),
            "customer_id": self.id,
            "account_id": f"card-{self.id}",
            "amount": _money(amount),
            "currency": CURRENCY,
            "direction": "debit",
            "channel": channel,
            "mcc": mcc,
            "counterparty": counterparty,
            "status": "posted",
        }
        day.emit(TRANSACTIONS, self.id, second, payload)

    def _tx(
        self,
        day: _Day,
        second: int,
        direction: str,
        channel: str,
        amount: int,
        mcc: str | None,
        counterparty: str,
        status: str = "posted",
    ) -> None:
        payload: dict[str, Any] = {
            "event_id": self._next_id("tx"),
            "customer_id": self.id,
            "account_id": self.account,
            "amount": _money(amount),
            "currency": CURRENCY,
            "direction": direction,
            "channel": channel,
        }
        if mcc is not None:
            payload["mcc"] = mcc
        payload["counterparty"] = counterparty
        payload["balance_after"] = _money(self.balance)
        payload["credit_limit"] = self.limit_text
        payload["status"] = status
        day.emit(TRANSACTIONS, self.id, second, payload)

    def _repayment(
        self,
        day: _Day,
        second: int,
        loan: _Loan,
        kind: str,
        number: int,
        due: date,
        amount: int,
        paid: int,
    ) -> None:
        payload = {
            "event_id": self._next_id("rp"),
            "customer_id": self.id,
            "loan_id": loan.loan_id,
            "type": kind,
            "instalment_no": number,
            "due_date": due.isoformat(),
            "amount_due": _money(amount),
            "amount_paid": _money(paid),
        }
        day.emit(REPAYMENTS, self.id, second, payload)

    def _pay(self, day: _Day, second: int, loan: _Loan, number: int, amount: int) -> None:
        entry = loan.unpaid[number]
        self._repayment(day, second, loan, "payment", number, entry[0], entry[1], amount)
        entry[2] += amount
        if entry[2] >= entry[1]:
            del loan.unpaid[number]

    def _outcome(self, day: _Day, second: int, outcome: str) -> None:
        payload = {"event_id": self._next_id("oc"), "customer_id": self.id, "outcome": outcome}
        day.emit(OUTCOMES, self.id, second, payload)


def _draw_income(rng: random.Random, profile: str) -> float:
    match profile:
        case "salaried":
            return min(12_000.0, max(1_300.0, rng.lognormvariate(math.log(2_700), 0.4)))
        case "self_employed":
            return min(15_000.0, max(1_200.0, rng.lognormvariate(math.log(3_000), 0.55)))
        case "student":
            return rng.uniform(450, 950)
        case _:
            return min(5_000.0, max(900.0, rng.lognormvariate(math.log(1_700), 0.3)))


# --------------------------------------------------------------------------- calendar

_HOLIDAYS = {(1, 1), (5, 1), (12, 25), (12, 26)}


def is_payday(today: date, day_of_month: int) -> bool:
    """Pay falls on ``day_of_month``, or the business day before when that is a weekend or a
    public holiday (so the 1st's pay may come on the last business day of the month before)."""
    following = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return today in (
        _payday(today.year, today.month, day_of_month),
        _payday(following.year, following.month, day_of_month),
    )


def _payday(year: int, month: int, day_of_month: int) -> date:
    pay = date(year, month, day_of_month)
    while pay.weekday() >= 5 or (pay.month, pay.day) in _HOLIDAYS:
        pay -= timedelta(days=1)
    return pay


# --------------------------------------------------------------------------- malformed


def _plausible(stream: str, customer_id: str, event_id: str, ts: str) -> dict[str, Any]:
    """A valid payload for ``stream``, to be broken in exactly one way."""
    if stream == TRANSACTIONS:
        return {
            "schema_version": SCHEMA_VERSION,
            "event_id": event_id,
            "customer_id": customer_id,
            "account_id": f"acct-{customer_id}",
            "ts": ts,
            "amount": "12.34",
            "currency": CURRENCY,
            "direction": "debit",
            "channel": "card",
            "mcc": "5411",
            "status": "posted",
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "customer_id": customer_id,
        "loan_id": f"loan-{customer_id}",
        "ts": ts,
        "type": "payment",
        "instalment_no": 1,
        "due_date": ts[:10],
        "amount_due": "100.00",
        "amount_paid": "100.00",
    }


def _break(kind: str, stream: str, value: dict[str, Any], at: datetime) -> bytes:
    amount_field = "amount" if stream == TRANSACTIONS else "amount_paid"
    match kind:
        case "not_json":
            return b"\x00garbage{"
        case "json_array":
            return orjson.dumps([value])
        case "missing_customer_id":
            del value["customer_id"]
        case "negative_amount":
            value[amount_field] = "-" + value[amount_field]
        case "unknown_enum":
            if stream == TRANSACTIONS:
                value["direction"] = "sideways"
            else:
                value["type"] = "refund"
        case "non_utc_timestamp":
            value["ts"] = at.astimezone(timezone(timedelta(hours=2))).isoformat()
        case "unparsable_timestamp":
            value["ts"] = f"{value['ts'][:10]}T25:61:00Z"
        case "wrong_type":
            value[amount_field] = [value[amount_field]]
        case "schema_version_2":
            value["schema_version"] = 2
        case _:
            raise ValueError(f"unknown malformed kind {kind!r}")
    return orjson.dumps(value)


# --------------------------------------------------------------------------- files


def to_jsonl(messages: Iterable[GeneratedMessage], path: str | os.PathLike[str]) -> int:
    """Write a recording (``streams.replay.read_recording`` reads it): one JSON object per
    message with ``stream``, ``key``, ``event_time``, ``value`` (or ``value_b64`` when not
    UTF-8) and ``malformed``. Returns the count."""
    count = 0
    with open(path, "wb") as out:
        for message in messages:
            record: dict[str, Any] = {
                "stream": message.stream,
                "key": message.key.decode(),
                "event_time": _rfc3339(message.event_time),
            }
            try:
                record["value"] = message.value.decode()
            except UnicodeDecodeError:
                record["value_b64"] = base64.b64encode(message.value).decode("ascii")
            record["malformed"] = message.malformed
            out.write(orjson.dumps(record) + b"\n")
            count += 1
    return count


def truth_to_jsonl(truth: dict[str, CustomerTruth], path: str | os.PathLike[str]) -> None:
    """One JSON object per customer, in customer id order."""
    with open(path, "wb") as out:
        for customer_id in sorted(truth):
            out.write(orjson.dumps(truth[customer_id].to_dict()) + b"\n")


# --------------------------------------------------------------------------- helpers


def _spread(count: int, days: int) -> dict[int, int]:
    """``count`` items spread evenly over ``days`` days: day index -> how many."""
    out: dict[int, int] = {}
    for i in range(count):
        index = days * (2 * i + 1) // (2 * count)
        out[index] = out.get(index, 0) + 1
    return out


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; fine for the small means of daily counts."""
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(1 for _ in range(n) if rng.random() < p)


def _merchant(rng: random.Random) -> tuple[str, str]:
    mcc, counterparty, _ = rng.choices(_MERCHANTS, [m[2] for m in _MERCHANTS])[0]
    return mcc, counterparty


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")[:19] + "Z"


def _cents(euros: float) -> int:
    return round(euros * 100)


def _lognormal_cents(rng: random.Random, mean: float, sigma: float) -> int:
    """A lognormal amount in cents with the given mean, at least 0.50."""
    mu = math.log(max(mean, 1.0)) - sigma * sigma / 2
    return max(50, round(rng.lognormvariate(mu, sigma)))


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"
