"""Public data sets turned into recordings of the wire contracts, for honest offline evaluation.

:func:`write_taiwan` converts the UCI "default of credit card clients" file (Taiwan, 2005:
30,000 card holders, six monthly snapshots April to September, the October default flag) into a
JSONL recording that :func:`streams.replay.read_recording` reads, plus a truth file.

**Time.** Months are normalised to 30 days, so that a delay of ``n`` months is exactly ``30 * n``
days past due. Customers are taken in a seeded random order; customer ``k`` (from 0) has its
April 1st at :data:`BASE` plus ``k`` hours, its month ``m`` (0 = April) starts ``30 * m`` days
later and its evaluation time, the "1 October", is 180 days after its April 1st. Earlier
customers' outcomes therefore come before later customers are scored: a replay learns as it goes.

**Per month** ``m`` (``PAY``, ``BILL_AMT``, ``PAY_AMT`` of that month), at the month's start:

- repayments on the card account's loan (``loan_id`` ``card-{customer}``): instalment ``m``, for
  the previous statement, falls due that day. Status ``-2`` (no consumption) is an instalment of
  0; ``-1`` (paid in full) is the minimum due (a tenth of the bill, at least 1) paid with the whole
  bill; ``0`` (revolving) is the minimum paid exactly; ``n >= 1`` is the instalment left unpaid.
  Older instalments are settled (``payment`` events) or re-billed (a ``due`` event with its past
  due date) so that **at the end of the month (the next month's start, before its events) the
  days past due are exactly** ``30 * max(PAY, 0)``. The raw file is not always consistent from
  month to month (a status may jump from 0 to 2); the re-billed instalment is how such a jump
  shows;
- a ``transfer`` credit of ``PAY_AMT`` (if positive), the payment made that month;

and 20 days in, the statement: a ``card`` debit (or, when the balance fell, a ``card`` credit)
that brings ``balance_after`` to minus ``BILL_AMT`` (a negative bill is a credit balance), with
``credit_limit`` ``LIMIT_BAL``. Money is in whole NT dollars (``currency`` ``TWD``).

**Outcome.** At the evaluation time a defaulter gets an ``ews.outcomes`` ``default``, and a
non-defaulter ``closed``: the file observes no one after October. Without it, an instalment left
overdue in September would stay unpaid for ever in the recording, and roll the customer to 90+
days past due: a default the bank did not see, learned as a label. After ``closed`` days past
due no longer make a label bad (:meth:`detectors.engine.RiskDetector._mature`).
"""

from __future__ import annotations

import csv
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from streams.replay import STREAM_RANK

BASE = datetime(2000, 1, 1, tzinfo=UTC)
"""April 1st of the first customer in the seeded order."""
MONTH = timedelta(days=30)
MONTHS = 6
STATEMENT_AFTER = timedelta(days=20)
CUSTOMER_STEP = timedelta(hours=1)
CURRENCY = "TWD"
_INSTALMENT_OFFSET = 10  # instalment numbers stay positive for arrears from before April

# Chronological columns: April (index 0) to September (index 5).
PAY_COLUMNS = ("PAY_6", "PAY_5", "PAY_4", "PAY_3", "PAY_2", "PAY_0")
BILL_COLUMNS = tuple(f"BILL_AMT{i}" for i in range(6, 0, -1))
PAID_COLUMNS = tuple(f"PAY_AMT{i}" for i in range(6, 0, -1))
DEFAULT_COLUMN = "default.payment.next.month"
REQUIRED = ("ID", "LIMIT_BAL", *PAY_COLUMNS, *BILL_COLUMNS, *PAID_COLUMNS, DEFAULT_COLUMN)


class DatasetError(ValueError):
    """A row of the input file that cannot be converted; the message names line and column."""


@dataclass(frozen=True, slots=True)
class TaiwanRow:
    """One customer of the file, months in chronological order (April first)."""

    id: int
    limit: int
    pay: tuple[int, ...]
    bill: tuple[int, ...]
    paid: tuple[int, ...]
    default: bool

    @property
    def customer_id(self) -> str:
        return f"tw{self.id:05d}"


@dataclass(frozen=True, slots=True)
class Message:
    """One recorded message, with the order key it is written in."""

    ts: datetime
    stream: str
    event_id: str
    key: str
    value: dict[str, Any]

    @property
    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.ts, STREAM_RANK[self.stream], self.event_id)

    def __lt__(self, other: Message) -> bool:
        return self.sort_key < other.sort_key

    def record(self) -> bytes:
        return orjson.dumps(
            {
                "stream": self.stream,
                "key": self.key,
                "value": orjson.dumps(self.value).decode(),
                "event_time": rfc3339(self.ts),
            }
        )


def rfc3339(moment: datetime) -> str:
    """``2000-01-01T05:00:00Z`` for a whole-second UTC datetime."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")[:19] + "Z"


def read_taiwan(csv_path: str | Path) -> Iterator[TaiwanRow]:
    """Rows of the CSV, validated; a bad row raises :class:`DatasetError` naming line and column."""
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
        if missing:
            raise DatasetError(f"{csv_path}: missing column(s) {', '.join(missing)}")
        seen: set[int] = set()
        for row in reader:
            where = f"{csv_path}:{reader.line_num}"
            parsed = _row(row, where)
            if parsed.id in seen:
                raise DatasetError(f"{where}: ID {parsed.id} appears twice")
            seen.add(parsed.id)
            yield parsed


def _int(row: dict[str, str], column: str, where: str, low: int, high: int) -> int:
    raw = row.get(column)
    try:
        value = float(raw or "")
    except ValueError:
        raise DatasetError(f"{where}: column {column}: {raw!r} is not a number") from None
    if not value.is_integer() or not low <= value <= high:
        raise DatasetError(
            f"{where}: column {column}: {raw!r} is not a whole number in {low}..{high}"
        )
    return int(value)


def _row(row: dict[str, str], where: str) -> TaiwanRow:
    big = 10**12
    default = _int(row, DEFAULT_COLUMN, where, 0, 1)
    return TaiwanRow(
        id=_int(row, "ID", where, 1, 99_999),
        limit=_int(row, "LIMIT_BAL", where, 1, big),
        pay=tuple(_int(row, c, where, -2, 9) for c in PAY_COLUMNS),
        bill=tuple(_int(row, c, where, -big, big) for c in BILL_COLUMNS),
        paid=tuple(_int(row, c, where, 0, big) for c in PAID_COLUMNS),
        default=bool(default),
    )


def april_first(order: int) -> datetime:
    """The shifted April 1st of the customer at position ``order`` of the seeded order."""
    return BASE + order * CUSTOMER_STEP


def evaluate_at(order: int) -> datetime:
    """The shifted "1 October": when the default flag is declared and the score is judged."""
    return april_first(order) + MONTHS * MONTH


def minimum_due(bill: int) -> int:
    """The minimum payment on a statement: a tenth of the bill, at least 1."""
    return max(bill // 10, 1)


def customer_messages(row: TaiwanRow, order: int) -> list[Message]:
    """Every message of one customer, sorted as the recording orders them."""
    cid = row.customer_id
    start = april_first(order)
    loan = f"card-{cid}"
    out: list[Message] = []
    open_: dict[int, int] = {}  # instalment index -> amount still due

    def repayment(at: datetime, tag: str, kind: str, index: int, due: int, paid: int) -> None:
        event_id = f"{cid}-r{tag}"
        value = {
            "schema_version": 1,
            "event_id": event_id,
            "customer_id": cid,
            "loan_id": loan,
            "ts": rfc3339(at),
            "type": kind,
            "instalment_no": index + _INSTALMENT_OFFSET,
            "due_date": (start + index * MONTH).date().isoformat(),
            "amount_due": str(due),
            "amount_paid": str(paid),
        }
        out.append(Message(at, "repayments", event_id, cid, value))

    def transaction(
        at: datetime, tag: str, amount: int, direction: str, channel: str, balance: int
    ) -> None:
        event_id = f"{cid}-t{tag}"
        value = {
            "schema_version": 1,
            "event_id": event_id,
            "customer_id": cid,
            "account_id": f"card-{cid}",
            "ts": rfc3339(at),
            "amount": str(amount),
            "currency": CURRENCY,
            "direction": direction,
            "channel": channel,
            "status": "posted",
            "balance_after": str(balance),
            "credit_limit": str(row.limit),
        }
        out.append(Message(at, "transactions", event_id, cid, value))

    balance = -row.bill[0]  # the March statement is unknown: take April's
    for m in range(MONTHS):
        at = start + m * MONTH
        status = row.pay[m]
        previous_bill = row.bill[m - 1] if m else row.bill[0]
        # 1. Older instalments: settle those older than the target, re-bill the target.
        target = m + 1 - status if status >= 1 else m
        for index in sorted(i for i in open_ if i < target):
            owed = open_.pop(index)
            repayment(at, f"{m}a{index + 9:02d}", "payment", index, owed, owed)
        if target < m and target not in open_:
            due = minimum_due(previous_bill)
            repayment(at, f"{m}b", "due", target, due, 0)
            open_[target] = due
        # 2. This month's instalment, due today.
        due = 0 if status == -2 else minimum_due(previous_bill)
        paid = {-2: 0, -1: max(previous_bill, due), 0: due}.get(status, 0)
        repayment(at, f"{m}c", "due", m, due, paid)
        if paid < due:
            open_[m] = due
        # 3. The payment made this month, then the statement 20 days in.
        if row.paid[m] > 0:
            balance += row.paid[m]
            transaction(at, f"{m}p", row.paid[m], "credit", "transfer", balance)
        change = -row.bill[m] - balance
        if change:
            direction = "credit" if change > 0 else "debit"
            balance = -row.bill[m]
            transaction(at + STATEMENT_AFTER, f"{m}s", abs(change), direction, "card", balance)
    at = evaluate_at(order)
    kind = "default" if row.default else "closed"
    event_id = f"{cid}-{kind}"
    value = {
        "schema_version": 1,
        "event_id": event_id,
        "customer_id": cid,
        "ts": rfc3339(at),
        "outcome": kind,
    }
    out.append(Message(at, "outcomes", event_id, cid, value))
    out.sort()
    return out


def seeded_order(rows: list[TaiwanRow], seed: int) -> list[TaiwanRow]:
    """The rows in the order the recording takes them: shuffled by ``random.Random(seed)``."""
    ordered = sorted(rows, key=lambda r: r.id)
    random.Random(seed).shuffle(ordered)
    return ordered


def truth_record(row: TaiwanRow, order: int) -> dict[str, Any]:
    return {
        "customer_id": row.customer_id,
        "default": row.default,
        "evaluate_at": rfc3339(evaluate_at(order)),
        "limit": row.limit,
        "order": order,
        "pay_0": row.pay[-1],
    }


def write_taiwan(
    csv_path: str | Path,
    out_path: str | Path,
    truth_path: str | Path,
    seed: int = 7,
    limit: int | None = None,
) -> dict[str, int]:
    """Convert the CSV into a recording and a truth file; ``limit`` keeps the first customers of
    the seeded order. Returns counts: customers, defaults and messages per stream.

    The recording is written in merge order, (event time, outcome < repayment < transaction,
    ``event_id``), in bounded memory: customers start one :data:`CUSTOMER_STEP` apart, so every
    buffered message earlier than the next customer's start can be written out."""
    rows = seeded_order(list(read_taiwan(csv_path)), seed)
    if limit is not None:
        rows = rows[:limit]
    counts = {"customers": 0, "defaults": 0, "transactions": 0, "repayments": 0, "outcomes": 0}
    pending: list[Message] = []
    with open(out_path, "wb") as out, open(truth_path, "wb") as truth:

        def flush(before: datetime | None) -> None:
            while pending and (before is None or pending[0].ts < before):
                message = heapq.heappop(pending)
                out.write(message.record() + b"\n")
                counts[message.stream] += 1

        for order, row in enumerate(rows):
            flush(april_first(order))
            for message in customer_messages(row, order):
                heapq.heappush(pending, message)
            truth.write(orjson.dumps(truth_record(row, order)) + b"\n")
            counts["customers"] += 1
            counts["defaults"] += row.default
        flush(None)
    return counts
