"""Days past due and missed instalments, derived from ``due``/``payment``/``reversal`` events.

DPD is the number of days between the oldest instalment that is not fully paid and ``now``
(event time). An instalment counts as paid once the amount paid reaches the amount due less a
tolerance of one minor unit. At most ``max_open`` unpaid instalments are tracked per customer
(the oldest, which decide DPD); further ones are only counted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from detectors.base import Signal
from detectors.events import Event, Repayment, RepaymentType

_TOLERANCE = Decimal("0.01")


class DaysPastDue(Signal):
    """Open instalments per loan, giving DPD, missed and partially paid counts."""

    name = "dpd"

    def __init__(self, max_open: int = 24) -> None:
        self.max_open = max_open
        # "loan_id#instalment_no" -> [due_date ordinal, amount_due, amount_paid]
        self.open: dict[str, list[Any]] = {}
        self.overflow = 0

    @property
    def params(self) -> dict[str, Any]:
        return {"max_open": self.max_open}

    def learn_one(self, event: Event) -> None:
        if not isinstance(event, Repayment):
            return
        key = f"{event.loan_id}#{event.instalment_no}"
        entry = self.open.get(key)
        if event.type is RepaymentType.DUE:
            if entry is None:
                entry = [event.due_date.toordinal(), event.amount_due, Decimal(0)]
            else:
                entry[1] = event.amount_due
            entry[2] += event.amount_paid
        elif event.type is RepaymentType.PAYMENT:
            if entry is None:
                return  # payment for an instalment already settled or never announced
            entry[2] += event.amount_paid
        else:  # reversal re-opens what it reverses
            if entry is None:
                entry = [event.due_date.toordinal(), event.amount_due, event.amount_due]
            entry[2] -= event.amount_paid
        if entry[2] + _TOLERANCE >= entry[1]:
            self.open.pop(key, None)
        else:
            self.open[key] = entry
            self._bound()

    def _bound(self) -> None:
        while len(self.open) > self.max_open:
            newest = max(self.open, key=lambda k: self.open[k][0])
            del self.open[newest]
            self.overflow += 1

    def days_past_due(self, now: datetime) -> int:
        overdue = [e[0] for e in self.open.values() if e[0] < now.toordinal()]
        return now.toordinal() - min(overdue) if overdue else 0

    def oldest_unpaid(self, now: datetime) -> int | None:
        """Ordinal of the oldest overdue due date, if any."""
        overdue = [e[0] for e in self.open.values() if e[0] < now.toordinal()]
        return min(overdue) if overdue else None

    def wake_at(self, now: datetime) -> datetime | None:
        """Tomorrow while anything is overdue (DPD grows daily); else the day after the
        earliest open due date, when it becomes overdue."""
        if not self.open:
            return None
        today = now.toordinal()
        earliest = min(e[0] for e in self.open.values())
        return _midnight(today + 1 if earliest < today else earliest + 1)

    def score_one(self, now: datetime) -> dict[str, float]:
        if not self.open:  # most customers, most of the time
            return {
                "dpd": 0.0,
                "missed_instalments": 0.0,
                "partial_instalments": 0.0,
                "arrears": 0.0,
            }
        today = now.toordinal()
        overdue = [e for e in self.open.values() if e[0] < today]
        return {
            "dpd": float(today - min(e[0] for e in overdue)) if overdue else 0.0,
            "missed_instalments": float(sum(1 for e in overdue if e[2] <= 0)),
            "partial_instalments": float(sum(1 for e in overdue if e[2] > 0)),
            "arrears": float(sum(e[1] - e[2] for e in overdue)),
        }

    def to_state(self) -> Any:
        """``[{loan_id: [[instalment_no, due ordinal, due, paid], ...]}, overflow]``, money in
        integer minor units where exact (else a decimal string)."""
        loans: dict[str, list[list[Any]]] = {}
        for key, (due_date, due, paid) in self.open.items():
            loan, _, number = key.rpartition("#")
            loans.setdefault(loan, []).append([int(number), due_date, _minor(due), _minor(paid)])
        return [loans, self.overflow]

    def load_state(self, state: Any) -> None:
        loans, self.overflow = state
        self.open = {
            f"{loan}#{number}": [due_date, _money(due), _money(paid)]
            for loan, entries in loans.items()
            for number, due_date, due, paid in entries
        }


def _midnight(ordinal: int) -> datetime:
    return datetime.fromordinal(ordinal).replace(tzinfo=UTC)


def _minor(amount: Decimal) -> int | str:
    cents = amount.scaleb(2)
    return int(cents) if cents == cents.to_integral_value() else str(amount)


def _money(value: int | str) -> Decimal:
    return Decimal(value).scaleb(-2) if isinstance(value, int) else Decimal(value)
