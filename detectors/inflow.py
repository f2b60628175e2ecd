"""Regular income: its period, usual amount and whether the next one is late, missing or short.

The inflows are salary credits (channel ``salary``). A customer with no salary credit yet is
learned from posted credit transfers of at least ``min_amount`` instead; the first salary
credit restarts learning from salary alone, so the two never mix.

Credits on the same or the next day (less than ``max(2, period / 4)`` days apart) are one
inflow: their amounts add up. The period is an exponentially weighted (EW) mean of the gaps
between inflows, in days, so weekly, fortnightly, four-weekly and monthly pay are all learned
without naming them. Once ``min_inflows`` inflows are known, a gap further than the tolerance
from the period is clipped to ``period +- tolerance`` before it is learned (a Huber-style EW),
so one skipped month or an extra payment moves the estimate by a bounded step.

The next inflow is expected ``period`` days after the last one. It counts as overdue only past
an effective tolerance of ``tolerance_days + dispersion_z * sd(gap)``: the EW standard
deviation of the gaps widens it for customers whose pay day wanders (weekend shifts, calendar
months of 28 to 31 days, a holiday delay) and vanishes for a customer paid like clockwork. The
dispersion starts at ``prior_dispersion * first gap`` and that prior fades as gaps are learned,
so a short history is not judged by a tolerance it has not earned.

Transfers count as regular income only once their period is at least
``min_transfer_period_days``: a self-employed customer's client payments, several a month at
random, are income but not a schedule, and a gap between them is no missing salary.

Days are UTC calendar days of the event time (``date.toordinal``). A credit older than the
last inflow, beyond the merging window, is ignored: it cannot move a schedule already past it.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

from detectors.base import Signal
from detectors.events import Channel, Direction, Event, Transaction, TxStatus

_MAX_COUNT = 1_000  # inflows counted beyond this add nothing; keeps the state bounded


class RegularInflow(Signal):
    """Learns the customer's regular income and reports it overdue, missing or shrunk.

    Features (``score_one``), all 0 until ``min_inflows`` inflows have been learned:

    * ``inflow_overdue_days``: days past the expected date beyond the effective tolerance;
    * ``inflow_missing``: 1.0 when ``inflow_overdue_days`` is above 0, else 0.0;
    * ``inflow_shrink``: ``max(0, 1 - last amount / usual amount)``, the usual amount being the
      EW mean of the inflows before the last one.
    """

    name = "inflow"

    def __init__(
        self,
        min_amount: float = 200.0,
        min_inflows: int = 3,
        min_salary_inflows: int = 2,
        tolerance_days: float = 5.0,
        fading_factor: float = 0.3,
        amount_fading_factor: float = 0.2,
        dispersion_z: float = 2.5,
        prior_dispersion: float = 0.1,
        min_transfer_period_days: float = 20.0,
    ) -> None:
        self.min_amount = min_amount
        self.min_inflows = min_inflows
        self.min_salary_inflows = min_salary_inflows
        self.tolerance_days = tolerance_days
        self.fading_factor = fading_factor
        self.amount_fading_factor = amount_fading_factor
        self.dispersion_z = dispersion_z
        self.prior_dispersion = prior_dispersion
        self.min_transfer_period_days = min_transfer_period_days
        self._reset(from_salary=False)

    def _reset(self, *, from_salary: bool) -> None:
        self.from_salary = from_salary  # True once a salary credit has been seen
        self.count = 0  # inflows learned (capped)
        self.last_day = 0  # ordinal of the last inflow's day
        self.last_amount = 0.0  # total of the last inflow
        self.period = 0.0  # EW mean gap, days
        self.gap_var = 0.0  # EW variance of the gaps, days^2
        self.usual = 0.0  # EW mean amount of the inflows before the last one

    @property
    def params(self) -> dict[str, Any]:
        return {
            "min_amount": self.min_amount,
            "min_inflows": self.min_inflows,
            "min_salary_inflows": self.min_salary_inflows,
            "tolerance_days": self.tolerance_days,
            "fading_factor": self.fading_factor,
            "amount_fading_factor": self.amount_fading_factor,
            "dispersion_z": self.dispersion_z,
            "prior_dispersion": self.prior_dispersion,
            "min_transfer_period_days": self.min_transfer_period_days,
        }

    @property
    def established(self) -> bool:
        """Whether enough inflows have been learned to expect the next one."""
        if self.from_salary:
            return self.count >= self.min_salary_inflows
        return self.count >= self.min_inflows and self.period >= self.min_transfer_period_days

    def tolerance(self) -> float:
        """The effective tolerance in days: the floor plus the gaps' dispersion."""
        return self.tolerance_days + self.dispersion_z * math.sqrt(self.gap_var)

    def learn_one(self, event: Event) -> None:
        if not isinstance(event, Transaction):
            return
        if event.direction is not Direction.CREDIT or event.status is not TxStatus.POSTED:
            return
        if event.channel is Channel.SALARY:
            if not self.from_salary:
                self._reset(from_salary=True)
        elif (
            self.from_salary
            or event.channel is not Channel.TRANSFER
            or event.amount < self.min_amount
        ):
            return
        day = event.ts.toordinal()
        amount = float(event.amount)
        if self.count == 0:
            self.count, self.last_day, self.last_amount = 1, day, amount
            return
        gap = day - self.last_day
        if abs(gap) < max(2.0, self.period / 4):
            self.last_amount += amount  # the same inflow, paid in parts
            return
        if gap < 0:
            return  # late and not part of the last inflow: the schedule is already past it
        self._learn_gap(float(gap))
        if self.count == 1:
            self.usual = self.last_amount
        else:
            self.usual += self.amount_fading_factor * (self.last_amount - self.usual)
        self.count = min(self.count + 1, _MAX_COUNT)
        self.last_day, self.last_amount = day, amount

    def _learn_gap(self, gap: float) -> None:
        if self.count == 1:
            self.period = gap
            self.gap_var = (self.prior_dispersion * gap) ** 2
            return
        if self.established:
            band = self.tolerance()
            gap = min(max(gap, self.period - band), self.period + band)
        delta = gap - self.period
        a = self.fading_factor
        self.period += a * delta
        self.gap_var = (1 - a) * (self.gap_var + a * delta * delta)

    def overdue_days(self, now: datetime) -> float:
        """Days past the expected date beyond the effective tolerance (may be negative)."""
        return now.toordinal() - self.last_day - self.period - self.tolerance()

    def wake_at(self, now: datetime) -> datetime | None:
        """The first day on which the next inflow counts as overdue, if that is still ahead."""
        if not self.established:
            return None
        first = math.floor(self.last_day + self.period + self.tolerance()) + 1
        if first <= now.toordinal():
            return None
        return datetime.fromordinal(first).replace(tzinfo=UTC)

    def score_one(self, now: datetime) -> dict[str, float]:
        if not self.established:
            return {"inflow_overdue_days": 0.0, "inflow_missing": 0.0, "inflow_shrink": 0.0}
        overdue = self.overdue_days(now)
        shrink = 1.0 - self.last_amount / self.usual if self.usual > 0 else 0.0
        return {
            "inflow_overdue_days": max(0.0, overdue),
            "inflow_missing": 1.0 if overdue > 0 else 0.0,
            "inflow_shrink": max(0.0, shrink),
        }

    def details(self, now: datetime) -> dict[str, str | float]:
        """Values for reason texts: the usual amount, the expected date and the last amount."""
        if not self.established:
            return {}
        expected = date.fromordinal(self.last_day + round(self.period))
        return {
            "inflow_expected_amount": self.usual,
            "inflow_expected_date": expected.isoformat(),
            "inflow_last_amount": self.last_amount,
            "inflow_period_days": self.period,
        }

    def to_state(self) -> Any:
        return [
            1 if self.from_salary else 0,
            self.count,
            self.last_day,
            self.last_amount,
            self.period,
            self.gap_var,
            self.usual,
        ]

    def load_state(self, state: Any) -> None:
        from_salary, count, last_day, last_amount, period, gap_var, usual = state
        self.from_salary = bool(from_salary)
        self.count = int(count)
        self.last_day = int(last_day)
        self.last_amount = float(last_amount)
        self.period = float(period)
        self.gap_var = float(gap_var)
        self.usual = float(usual)
