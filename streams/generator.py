"""Deterministic synthetic transaction and repayment events for the demo and the tests.

``generate()`` simulates a bank's retail customers day by day and returns the Kafka messages
they would produce on the two input streams, sorted by event time, together with the ground
truth about who deteriorates and when. Everything is driven by ``random.Random(seed)``: no wall
clock, no environment, so the same arguments always give byte-identical output.

Each customer has

* a current account (``acct-c0007``) with a monthly salary credit on a customer-specific day of
  the month (+-1 day), three monthly direct debits (rent, utilities, phone), one to three
  card/ATM spends a day of a customer-specific size, a running balance and an overdraft limit;
* an instalment loan (``loan-c0007``): a ``due`` event at 00:00Z on each due date, then a
  ``payment`` of the full amount on the due date or up to three days later.

A ``deteriorating_share`` of the customers has an onset between 1/6 and 1/2 of the period.
From the onset the salary stops or shrinks, spending shifts to cash advances and gambling
(mcc 7995), the balance runs into the overdraft, direct debits that would breach the limit are
``returned`` (with a fee), and one to three weeks later loan payments turn partial (one of them
may be paid and then reversed) and then stop, so the customer goes 30+ and, if the period is
long enough, 90+ days past due.

Days past due (DPD) at the end of a day = days since the oldest due date whose instalment is not
fully paid (payments minus reversals) by the end of that day; 0 if none. ``CustomerTruth`` holds
the first dates on which it reaches 30 and 90, computed here from the repayment events emitted.

Wire contract v1 (see DESIGN.md, "Wire contracts"): JSON objects with ``schema_version: 1``,
times as RFC 3339 UTC strings ending in ``Z``, money as decimal strings. A ``reversal`` carries
the reversed amount, positive, in ``amount_paid``. ``malformed`` extra messages, flagged
``malformed=True``, are spread over both streams and broken in the ways of ``MALFORMED_KINDS``;
they keep a customer id key so they route like the others, and take no part in the truth.
"""

from __future__ import annotations

import base64
import math
import os
import random
from bisect import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

from config.settings import Topics
from streams.replay import Recorded

TRANSACTIONS = "transactions"
REPAYMENTS = "repayments"
SCHEMA_VERSION = 1
CURRENCY = "EUR"
GAMBLING_MCC = "7995"

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

# Within one instant, repayments sort before transactions (the worker's merge order).
_RP_RANK, _TX_RANK = 0, 1
_STREAM_RANK = {REPAYMENTS: _RP_RANK, TRANSACTIONS: _TX_RANK}
_DAY = 86_400
_RETURNED_DD_FEE = 15_00  # cents
_CARD_MERCHANTS = (  # (mcc, counterparty)
    ("5411", "supermarket"),
    ("5812", "restaurant"),
    ("5541", "fuel-station"),
    ("5912", "pharmacy"),
    ("5651", "clothing-store"),
    ("4111", "public-transport"),
    ("5999", "online-shop"),
)
_CARD_MERCHANT_CUM_WEIGHTS = (40, 55, 65, 70, 78, 88)  # percent; the last takes the rest


@dataclass(frozen=True, slots=True)
class GeneratedMessage:
    """One Kafka message: logical stream, key (customer id, UTF-8) and value bytes."""

    stream: str
    key: bytes
    value: bytes
    event_time: datetime
    malformed: bool


@dataclass(frozen=True, slots=True)
class CustomerTruth:
    """What really happens to a customer (``onset`` is midnight UTC of the onset day)."""

    customer_id: str
    deteriorates: bool
    onset: datetime | None
    first_30dpd: date | None
    first_90dpd: date | None


@dataclass(frozen=True, slots=True)
class GeneratedStream:
    """Messages sorted by (event time, repayments before transactions, event id), and the truth."""

    messages: list[GeneratedMessage]
    truth: dict[str, CustomerTruth]


def input_topic(topics: Topics, stream: str) -> str:
    """The input topic a generated message of ``stream`` belongs on."""
    return topics.transactions if stream == TRANSACTIONS else topics.repayments


def as_recorded(messages: Iterable[GeneratedMessage], topics: Topics) -> list[Recorded]:
    """Generated messages as the offline replay reads them."""
    return [Recorded(input_topic(topics, m.stream), m.key, m.value) for m in messages]


def generate(
    *,
    customers: int = 100,
    days: int = 180,
    seed: int = 7,
    deteriorating_share: float = 0.2,
    malformed: int = 5,
    start: date = date(2025, 1, 1),
) -> GeneratedStream:
    """Simulate ``customers`` customers over ``days`` days from ``start`` (midnight UTC)."""
    if customers < 1 or days < 1 or malformed < 0:
        raise ValueError("customers and days must be >= 1 and malformed >= 0")
    if not 0.0 <= deteriorating_share <= 1.0:
        raise ValueError("deteriorating_share must be within [0, 1]")

    rng = random.Random(seed)
    ids = [f"c{n:04d}" for n in range(1, customers + 1)]
    deteriorating = set(rng.sample(ids, round(customers * deteriorating_share)))

    pending: list[_Pending] = []
    truth: dict[str, CustomerTruth] = {}
    for customer_id in ids:
        customer_rng = random.Random(rng.getrandbits(64))
        profile = _profile(customer_rng, customer_id, days, customer_id in deteriorating)
        transactions = _transactions(customer_rng, profile, start, days)
        repayments = _repayments(customer_rng, profile, start, days)
        pending += transactions
        pending += repayments
        truth[customer_id] = _truth(profile, repayments, start, days)
    pending += _malformed(rng, ids, start, days, malformed)

    pending.sort()  # by (seconds, stream rank, event id), unique per message
    epoch = _midnight(start)
    messages = [
        GeneratedMessage(
            stream=p.stream,
            key=p.customer_id.encode(),
            value=p.value,
            event_time=epoch + timedelta(seconds=p.seconds),
            malformed=p.malformed,
        )
        for p in pending
    ]
    return GeneratedStream(messages=messages, truth=truth)


# --------------------------------------------------------------------------- customers


@dataclass(frozen=True, slots=True)
class _Bill:
    """A monthly direct debit."""

    day: int
    amount: int  # cents
    mcc: str
    counterparty: str


@dataclass(frozen=True, slots=True)
class _Profile:
    """A customer's fixed parameters; money in cents, days as indexes from the start."""

    customer_id: str
    account_id: str
    salary: int
    pay_day: int
    employer: str
    credit_limit: int
    credit_limit_text: str
    opening_balance: int
    spend_mean: int
    bills: tuple[_Bill, ...]
    instalment: int
    due_day: int
    first_instalment_no: int
    onset_day: int | None
    salary_factor_after_onset: float  # 0.0: the salary stops
    stress_lag_days: int  # onset -> first instalment not paid in full


class _Pending(NamedTuple):
    """A message before sorting; the first three fields are its (unique) sort key."""

    seconds: int  # since the start, midnight UTC
    stream_rank: int  # repayments before transactions at the same instant
    sort_id: str  # the event id
    stream: str
    customer_id: str
    value: bytes  # serialised at once: bytes keep the heap, and the GC's work, small
    malformed: bool = False


def _profile(rng: random.Random, customer_id: str, days: int, deteriorates: bool) -> _Profile:
    salary = _cents(min(9_000.0, max(1_400.0, rng.lognormvariate(math.log(2_600), 0.35))))
    rent = _cents(salary / 100 * rng.uniform(0.20, 0.30))
    bills = (
        _Bill(rng.randint(1, 5), rent, "6513", "landlord"),
        _Bill(rng.randint(10, 20), _cents(rng.uniform(60, 150)), "4900", "utility"),
        _Bill(rng.randint(15, 28), _cents(rng.uniform(20, 60)), "4814", "telecom"),
    )
    # Healthy customers spend 55-75 % of their salary; two discretionary spends a day.
    discretionary = salary * rng.uniform(0.55, 0.75) - sum(b.amount for b in bills)
    onset_day = rng.randint(days // 6, days // 2) if deteriorates else None
    credit_limit = rng.choice((500, 1_000, 1_500, 2_000)) * 100
    return _Profile(
        customer_id=customer_id,
        account_id=f"acct-{customer_id}",
        salary=salary,
        pay_day=rng.randint(1, 28),
        employer=f"employer-{rng.randint(1, 60):03d}",
        credit_limit=credit_limit,
        credit_limit_text=_money(credit_limit),
        opening_balance=_cents(salary / 100 * rng.uniform(0.2, 1.5)),
        spend_mean=max(5_00, round(discretionary / (30.4 * 2))),
        bills=bills,
        instalment=_cents(rng.uniform(150, 600)),
        due_day=rng.randint(1, 28),
        first_instalment_no=rng.randint(1, 30),
        onset_day=onset_day,
        salary_factor_after_onset=0.0 if rng.random() < 0.6 else rng.uniform(0.3, 0.5),
        stress_lag_days=rng.randint(7, 21),
    )


# --------------------------------------------------------------------------- transactions


# A transaction the customer attempts; whether it posts depends on the balance:
# (second of the day, direction, channel, amount in cents, mcc, counterparty).
_Planned = tuple[int, str, str, int, str | None, str | None]


def _transactions(rng: random.Random, p: _Profile, start: date, days: int) -> list[_Pending]:
    end = start + timedelta(days=days)
    jitter = (-1, 0, 0, 0, 1)
    paydays = {d + timedelta(days=rng.choice(jitter)) for d in _monthly(start, end, p.pay_day)}
    bill_days = {(d, b.counterparty) for b in p.bills for d in _monthly(start, end, b.day)}

    out: list[_Pending] = []
    balance = p.opening_balance
    for day_index in range(days):
        day = start + timedelta(days=day_index)
        day_text = day.isoformat()
        stressed = p.onset_day is not None and day_index >= p.onset_day
        planned = _plan_day(rng, p, day, stressed, day in paydays, bill_days)
        for plan in sorted(planned):
            second, direction, channel, amount, _, _ = plan
            if direction == "credit":
                balance += amount
                status = "posted"
            elif balance - amount >= -p.credit_limit:
                balance -= amount
                status = "posted"
            elif channel == "direct_debit":
                status = "returned"
            else:
                continue  # a declined card payment or withdrawal never reaches the ledger
            out.append(_transaction(p, len(out) + 1, day_index, day_text, plan, status, balance))
            if status == "returned":
                fee: _Planned = (second + 60, "debit", "fee", _RETURNED_DD_FEE, None, "bank")
                balance -= _RETURNED_DD_FEE
                out.append(
                    _transaction(p, len(out) + 1, day_index, day_text, fee, "posted", balance)
                )
    return out


def _plan_day(
    rng: random.Random,
    p: _Profile,
    day: date,
    stressed: bool,
    payday: bool,
    bill_days: set[tuple[date, str]],
) -> list[_Planned]:
    planned: list[_Planned] = []
    if payday:
        factor = p.salary_factor_after_onset if stressed else 1.0
        if factor > 0:
            amount = _cents(p.salary / 100 * factor)
            second = rng.randint(5 * 3600, 7 * 3600)
            planned.append((second, "credit", "salary", amount, None, p.employer))
    for bill in p.bills:
        if (day, bill.counterparty) in bill_days:
            second = rng.randint(3 * 3600, 5 * 3600)
            planned.append(
                (second, "debit", "direct_debit", bill.amount, bill.mcc, bill.counterparty)
            )
    for _ in range(rng.choice((1, 2, 2, 3, 3))):
        planned.append(_spend(rng, p, stressed))
    return planned


def _spend(rng: random.Random, p: _Profile, stressed: bool) -> _Planned:
    """One discretionary debit; under stress a third are cash advances and a fifth gambling."""
    second = rng.randint(7 * 3600, 22 * 3600)
    draw = rng.random()
    if stressed and draw < 0.30:
        amount = rng.choice((50, 100, 100, 150, 200, 300)) * 100
        return (second, "debit", "cash_advance", amount, "6010", "atm-cash-advance")
    if stressed and draw < 0.50:
        amount = _lognormal_cents(rng, max(p.spend_mean, 25_00) * 1.5, 0.8)
        second = rng.randint(19 * 3600, 24 * 3600 - 1)
        return (second, "debit", "card", amount, GAMBLING_MCC, "online-betting")
    if draw < (0.90 if stressed else 0.85):
        mcc, counterparty = _CARD_MERCHANTS[bisect(_CARD_MERCHANT_CUM_WEIGHTS, rng.random() * 100)]
        amount = _lognormal_cents(rng, p.spend_mean, 0.7)
        return (second, "debit", "card", amount, mcc, counterparty)
    amount = max(20, round(_lognormal_cents(rng, p.spend_mean * 2, 0.5) / 1_000) * 10) * 100
    return (second, "debit", "atm", amount, "6011", "atm")


def _transaction(
    p: _Profile, n: int, day_index: int, day_text: str, plan: _Planned, status: str, balance: int
) -> _Pending:
    second, direction, channel, amount, mcc, counterparty = plan
    event_id = f"tx-{p.customer_id}-{n:06d}"
    hours, rest = divmod(second, 3600)
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "customer_id": p.customer_id,
        "account_id": p.account_id,
        "ts": f"{day_text}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}Z",
        "amount": _money(amount),
        "currency": CURRENCY,
        "direction": direction,
        "channel": channel,
    }
    if mcc is not None:
        payload["mcc"] = mcc
    if counterparty is not None:
        payload["counterparty"] = counterparty
    payload["balance_after"] = _money(balance)
    payload["credit_limit"] = p.credit_limit_text
    payload["status"] = status
    seconds = day_index * _DAY + second
    return _Pending(seconds, _TX_RANK, event_id, TRANSACTIONS, p.customer_id, orjson.dumps(payload))


# --------------------------------------------------------------------------- repayments


def _repayments(rng: random.Random, p: _Profile, start: date, days: int) -> list[_Pending]:
    """A due event at 00:00Z per due date, then a payment (partial, bounced or none if stressed)."""
    end = start + timedelta(days=days)
    epoch = _midnight(start)
    stress_from = (
        None if p.onset_day is None else start + timedelta(days=p.onset_day + p.stress_lag_days)
    )
    events: list[tuple[int, str, int, date, int]] = []  # (seconds, type, instalment, due, paid)
    due_dates = [d for d in _monthly(start, end, p.due_day) if start <= d < end]
    stressed = 0
    for k, due in enumerate(due_dates):
        number = p.first_instalment_no + k
        due_seconds = (due - start).days * _DAY
        events.append((due_seconds, "due", number, due, 0))

        def pay_at(lag_days: int, due_seconds: int = due_seconds) -> int:
            return due_seconds + lag_days * _DAY + rng.randint(8 * 3600, 20 * 3600)

        if stress_from is None or due < stress_from:
            lag = rng.choices((0, 1, 2, 3), (70, 15, 10, 5))[0]
            events.append((pay_at(lag), "payment", number, due, p.instalment))
            continue
        stressed += 1
        if stressed == 1:  # first stressed instalment: a partial payment, a few days late
            partial = _cents(p.instalment / 100 * rng.uniform(0.3, 0.7))
            events.append((pay_at(rng.randint(2, 8)), "payment", number, due, partial))
        elif stressed == 2 and rng.random() < 0.5:  # second: a smaller partial payment
            partial = _cents(p.instalment / 100 * rng.uniform(0.1, 0.3))
            events.append((pay_at(rng.randint(5, 10)), "payment", number, due, partial))
        elif stressed == 2:  # or a full payment that bounces a few days later
            paid_at = pay_at(rng.randint(1, 3))
            events.append((paid_at, "payment", number, due, p.instalment))
            reversed_at = paid_at + rng.randint(3, 5) * _DAY
            events.append((reversed_at, "reversal", number, due, p.instalment))
        # from the third stressed instalment on, nothing is paid

    events = sorted(e for e in events if e[0] < days * _DAY)
    return [
        _repayment(p, n, epoch, seconds, kind, number, due, paid)
        for n, (seconds, kind, number, due, paid) in enumerate(events, start=1)
    ]


def _repayment(
    p: _Profile,
    n: int,
    epoch: datetime,
    seconds: int,
    kind: str,
    instalment_no: int,
    due: date,
    paid: int,
) -> _Pending:
    event_id = f"rp-{p.customer_id}-{n:06d}"
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "customer_id": p.customer_id,
        "loan_id": f"loan-{p.customer_id}",
        "ts": _ts(epoch, seconds),
        "type": kind,
        "instalment_no": instalment_no,
        "due_date": due.isoformat(),
        "amount_due": _money(p.instalment),
        "amount_paid": _money(paid),
    }
    return _Pending(seconds, _RP_RANK, event_id, REPAYMENTS, p.customer_id, orjson.dumps(payload))


# --------------------------------------------------------------------------- truth


def _truth(p: _Profile, repayments: list[_Pending], start: date, days: int) -> CustomerTruth:
    first_30dpd, first_90dpd = _first_dpd_dates(repayments, start, days, (30, 90))
    return CustomerTruth(
        customer_id=p.customer_id,
        deteriorates=p.onset_day is not None,
        onset=None if p.onset_day is None else _midnight(start) + timedelta(days=p.onset_day),
        first_30dpd=first_30dpd,
        first_90dpd=first_90dpd,
    )


def _first_dpd_dates(
    repayments: list[_Pending], start: date, days: int, thresholds: tuple[int, ...]
) -> list[date | None]:
    """First day whose end-of-day DPD reaches each threshold, from time-ordered repayments.

    DPD >= t on day d exactly when some instalment due on or before d - t is unpaid at the end
    of d, so it is enough to know each instalment's unpaid spells [first unpaid day, paid day).
    """
    end = start + timedelta(days=days)
    due_dates: dict[int, date] = {}
    owed: dict[int, int] = {}
    paid: dict[int, int] = {}
    unpaid_since: dict[int, date] = {}
    spells: list[tuple[date, date, date]] = []  # (due date, first unpaid day, first paid day)
    for event in repayments:
        value = orjson.loads(event.value)
        number = value["instalment_no"]
        day = start + timedelta(days=event.seconds // _DAY)
        if value["type"] == "due":
            due_dates[number] = date.fromisoformat(value["due_date"])
            owed[number] = _parse_cents(value["amount_due"])
        elif value["type"] == "payment":
            paid[number] = paid.get(number, 0) + _parse_cents(value["amount_paid"])
        else:  # reversal
            paid[number] = paid.get(number, 0) - _parse_cents(value["amount_paid"])
        if number not in due_dates:
            continue
        unpaid = paid.get(number, 0) < owed[number]
        if unpaid and number not in unpaid_since:
            unpaid_since[number] = day
        elif not unpaid and number in unpaid_since:
            spells.append((due_dates[number], unpaid_since.pop(number), day))
    spells += [(due_dates[number], since, end) for number, since in unpaid_since.items()]

    firsts: list[date | None] = []
    for threshold in thresholds:
        reached = [max(since, due + timedelta(days=threshold)) for due, since, _ in spells]
        hits = [d for d, (_, _, paid_on) in zip(reached, spells, strict=True) if d < paid_on]
        firsts.append(min(hits, default=None))
    return firsts


# --------------------------------------------------------------------------- malformed


def _malformed(
    rng: random.Random, ids: list[str], start: date, days: int, count: int
) -> list[_Pending]:
    """``count`` broken messages, evenly spread in time, alternating streams, cycling kinds."""
    epoch = _midnight(start)
    out: list[_Pending] = []
    for i in range(count):
        kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
        stream = TRANSACTIONS if i % 2 == 0 else REPAYMENTS
        customer_id = rng.choice(ids)
        day_index = days * (2 * i + 1) // (2 * count)
        seconds = day_index * _DAY + rng.randint(9 * 3600, 17 * 3600)
        prefix = "tx" if stream == TRANSACTIONS else "rp"
        event_id = f"{prefix}-{customer_id}-bad{i + 1:04d}"
        value = _plausible(stream, customer_id, event_id, _ts(epoch, seconds))
        broken = _break(kind, stream, value, epoch + timedelta(seconds=seconds))
        rank = _STREAM_RANK[stream]
        out.append(_Pending(seconds, rank, event_id, stream, customer_id, broken, malformed=True))
    return out


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


def to_jsonl(stream: GeneratedStream, path: str | os.PathLike[str]) -> None:
    """Write one JSON object per message: stream, key, event_time, value (or value_b64), malformed.

    ``value`` is the message value as a string when it is valid UTF-8, else ``value_b64``.
    """
    with open(path, "wb") as out:
        for message in stream.messages:
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


def truth_to_jsonl(stream: GeneratedStream, path: str | os.PathLike[str]) -> None:
    """Write one JSON object per customer, in customer id order."""
    with open(path, "wb") as out:
        for customer_id in sorted(stream.truth):
            truth = stream.truth[customer_id]
            record = {
                "customer_id": truth.customer_id,
                "deteriorates": truth.deteriorates,
                "onset": None if truth.onset is None else _rfc3339(truth.onset),
                "first_30dpd": None if truth.first_30dpd is None else truth.first_30dpd.isoformat(),
                "first_90dpd": None if truth.first_90dpd is None else truth.first_90dpd.isoformat(),
            }
            out.write(orjson.dumps(record) + b"\n")


# --------------------------------------------------------------------------- helpers


def _monthly(first: date, last: date, day_of_month: int) -> Iterator[date]:
    """``day_of_month`` (1-28) of every month from ``first``'s month to ``last``'s, inclusive."""
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        yield date(year, month, day_of_month)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _rfc3339(moment: datetime) -> str:
    """``2025-01-03T09:15:00Z`` for a whole-second UTC datetime."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")[:19] + "Z"


def _ts(epoch: datetime, seconds: int) -> str:
    return (epoch + timedelta(seconds=seconds)).isoformat()[:19] + "Z"


def _cents(euros: float) -> int:
    return round(euros * 100)


def _lognormal_cents(rng: random.Random, mean: float, sigma: float) -> int:
    """A lognormal amount in cents with the given mean, at least 0.50."""
    mu = math.log(mean) - sigma * sigma / 2
    return max(50, round(rng.lognormvariate(mu, sigma)))


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"


def _parse_cents(text: str) -> int:
    return int(Decimal(text) * 100)
