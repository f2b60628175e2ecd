"""Account and repayment conduct over time: trends, not shares of events.

:class:`AccountTrends` works on UTC calendar days of event time. Each day's posted credits and
debits are summed; when a later day arrives the finished day is folded into fast and slow
exponentially weighted (EW) means, and the days in between, on which nothing happened, are folded
in as zero-flow days in O(1) with the closed form of EW decay (``m <- (1 - a) ** k * m``). The
features read at ``now`` fold, without changing the state, every day that finished before
``now``'s day, so a customer who goes silent is seen to go silent. Overdraft days and returned
payments of the last 30 days sit in bitmaps anchored at the latest day seen.

A late event (its day before the latest day seen) is not allowed to rewrite history: its flows
are added to the current day, its overdraft and returned marks go on its own day when that is
still inside the bitmaps, and its balance, being stale, does not change the utilisation.

:class:`RepaymentBehaviour` follows instalments from ``due``/``payment``/``reversal`` events: the
share of each instalment that was paid, fast versus slow, cures and recent partial payments.

To keep each state near 100 bytes of JSON, the EW means are kept at 1/100 cent (money) and
micro (ratios) precision: the rounding is part of learning, so ``to_state`` itself is exact.
"""

from __future__ import annotations

import operator
import zlib
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from detectors.base import Signal
from detectors.events import Direction, Event, Repayment, RepaymentType, Transaction, TxStatus

WINDOW_DAYS = 30
_OD_BITS = 32  # overdraft days: bit i is (latest day - i)
_OD_MASK = (1 << _OD_BITS) - 1
_RET_DAYS = 31  # returned payments: 2-bit saturating counters, field i is (latest day - i)
_RET_MASK = (1 << (2 * _RET_DAYS)) - 1
_RET_LOW = int("01" * _RET_DAYS, 2)  # low bit of every 2-bit field
_MAX_DAYS = 10_000  # days counted beyond this change no bias correction
_MAX_CENTS = 10**18  # day totals saturate here (orjson integers are 64-bit)
_ZERO = Decimal(0)


def _span_alpha(span_days: float) -> float:
    """The EW weight of a span in days, as pandas defines it: ``2 / (span + 1)``."""
    return 2.0 / (span_days + 1.0)


def _cents(amount: Decimal) -> int:
    return int(amount.scaleb(2).to_integral_value(ROUND_HALF_EVEN))


def _window_mask(days: int, bits_per_day: int) -> int:
    return (1 << (bits_per_day * days)) - 1


# What AccountTrends.to_state saves, in order (module level: a compiled class body cannot
# read its own names).
_TRENDS_STATE = (
    "day",
    "overdraft_bits",
    "returned_bits",
    "days",
    "credit_today",
    "debit_today",
    "credit_fast",
    "credit_slow",
    "debit_fast",
    "debit_slow",
    "utilisation",
    "util_fast",
    "util_slow",
)

_trends_state_of = operator.attrgetter(*_TRENDS_STATE)


class AccountTrends(Signal):
    """Utilisation and its trend, overdraft days, returned payments, net flow and spend trends.

    Features (``score_one``):

    * ``utilisation``: overdraft used / credit limit on the latest event carrying both (0..1+);
    * ``utilisation_trend``: fast minus slow EW of end-of-day utilisation (positive = rising);
    * ``overdraft_days_30d``: distinct days of the last 30 (``now``'s day included) on which a
      transaction left the balance negative;
    * ``returned_30d``: returned (bounced) transactions in the last 30 days, at most 3 a day;
    * ``net_flow_decline``: (slow - fast) EW of daily net flow (credits - debits, posted only)
      over the slow EW of daily gross flow; positive = cash flow worsening;
    * ``spend_drop``: ``max(0, 1 - fast / slow)`` EW of daily posted debits.

    The three trend features are 0 until ``min_days`` days have been folded in.
    """

    name = "trends"

    def __init__(
        self, fast_span: float = 30.0, slow_span: float = 120.0, min_days: int = 30
    ) -> None:
        self.fast_span = fast_span
        self.slow_span = slow_span
        self.min_days = min_days
        self._fast, self._slow = _span_alpha(fast_span), _span_alpha(slow_span)  # EW weights
        self.day = 0  # ordinal of the latest day seen; 0: nothing seen yet
        self.overdraft_bits = 0
        self.returned_bits = 0
        self.days = 0  # finished days folded in (capped)
        self.credit_today = 0  # cents, posted, on ``day``
        self.debit_today = 0
        self.credit_fast = 0.0  # EW daily totals, money
        self.credit_slow = 0.0
        self.debit_fast = 0.0
        self.debit_slow = 0.0
        self.utilisation = -1.0  # latest; -1: never seen
        self.util_fast = 0.0
        self.util_slow = 0.0

    @property
    def params(self) -> dict[str, Any]:
        return {
            "fast_span": self.fast_span,
            "slow_span": self.slow_span,
            "min_days": self.min_days,
        }

    # ------------------------------------------------------------------ learning

    def learn_one(self, event: Event) -> None:
        if not isinstance(event, Transaction):
            return
        day = event.ts.toordinal()
        if self.day == 0:
            self.day = day
        elif day > self.day:
            self._advance(day)
        age = self.day - day  # > 0 for a late event
        if event.balance_after is not None and event.balance_after < 0 and age < _OD_BITS:
            self.overdraft_bits |= 1 << age
        returned = event.status is TxStatus.RETURNED and age < _RET_DAYS
        if returned and (self.returned_bits >> (2 * age)) & 3 != 3:  # saturate at 3 a day
            self.returned_bits += 1 << (2 * age)
        if event.status is TxStatus.POSTED:
            cents = _cents(event.amount)
            if event.direction is Direction.CREDIT:
                self.credit_today = min(self.credit_today + cents, _MAX_CENTS)
            else:
                self.debit_today = min(self.debit_today + cents, _MAX_CENTS)
        if age == 0 and event.balance_after is not None and event.credit_limit:
            used = max(-event.balance_after, _ZERO) / event.credit_limit
            first = self.utilisation < 0
            self.utilisation = round(float(used), 6)
            if first:  # start the trend at the first value, not at 0
                self.util_fast = self.util_slow = self.utilisation

    def _advance(self, day: int) -> None:
        """Fold the finished day and the empty days up to ``day``; move the bitmaps."""
        cf, cs, df, ds, uf, us, self.days = self._folded(day)
        self.credit_fast, self.credit_slow = round(cf, 4), round(cs, 4)
        self.debit_fast, self.debit_slow = round(df, 4), round(ds, 4)
        self.util_fast, self.util_slow = round(uf, 6), round(us, 6)
        shift = day - self.day
        self.overdraft_bits = (self.overdraft_bits << shift) & _OD_MASK if shift < _OD_BITS else 0
        self.returned_bits = (
            (self.returned_bits << (2 * shift)) & _RET_MASK if shift < _RET_DAYS else 0
        )
        self.credit_today = self.debit_today = 0
        self.day = day

    def _folded(self, day: int) -> tuple[float, float, float, float, float, float, int]:
        """The EW means as they would be at the start of ``day`` (a pure computation)."""
        cf, cs, df, ds = self.credit_fast, self.credit_slow, self.debit_fast, self.debit_slow
        uf, us = self.util_fast, self.util_slow
        n = self.days
        if self.day == 0 or day <= self.day:
            return cf, cs, df, ds, uf, us, n
        fast, slow = self._fast, self._slow
        credit, debit = self.credit_today / 100, self.debit_today / 100
        util = max(self.utilisation, 0.0)
        cf += fast * (credit - cf)
        cs += slow * (credit - cs)
        df += fast * (debit - df)
        ds += slow * (debit - ds)
        uf += fast * (util - uf)
        us += slow * (util - us)
        empty = day - self.day - 1
        if empty > 0:  # zero flows; the balance, hence the utilisation, stays where it was
            kf, ks = (1 - fast) ** empty, (1 - slow) ** empty
            cf, cs, df, ds = cf * kf, cs * ks, df * kf, ds * ks
            uf, us = util + kf * (uf - util), util + ks * (us - util)
        n = min(n + 1 + empty, _MAX_DAYS)
        return cf, cs, df, ds, uf, us, n

    # ------------------------------------------------------------------ reading

    def score_one(self, now: datetime) -> dict[str, float]:
        today = now.toordinal()
        if self.day == 0:
            return dict.fromkeys(
                (
                    "utilisation",
                    "utilisation_trend",
                    "overdraft_days_30d",
                    "returned_30d",
                    "net_flow_decline",
                    "spend_drop",
                ),
                0.0,
            )
        cf, cs, df, ds, uf, us, n = self._folded(today)
        shift = max(today - self.day, 0)
        window = WINDOW_DAYS - shift  # days of the bitmaps still inside the window
        od = self.overdraft_bits & _window_mask(window, 1) if window > 0 else 0
        ret = self.returned_bits & _window_mask(window, 2) if window > 0 else 0
        returned = (ret & _RET_LOW).bit_count() + 2 * ((ret >> 1) & _RET_LOW).bit_count()
        ready = n >= self.min_days
        if ready:  # the flow means start at 0: correct for that bias as Adam does
            kf = 1 - (1 - self._fast) ** n
            ks = 1 - (1 - self._slow) ** n
            cf, df, cs, ds = cf / kf, df / kf, cs / ks, ds / ks
        gross = cs + ds
        decline = ((cs - ds) - (cf - df)) / gross if ready and gross > 0 else 0.0
        drop = max(0.0, 1.0 - df / ds) if ready and ds > 0 else 0.0
        return {
            "utilisation": max(self.utilisation, 0.0),
            "utilisation_trend": uf - us if ready else 0.0,
            "overdraft_days_30d": float(od.bit_count()),
            "returned_30d": float(returned),
            "net_flow_decline": decline,
            "spend_drop": drop,
        }

    def to_state(self) -> Any:
        return list(_trends_state_of(self))

    def load_state(self, state: Any) -> None:
        for name, value in zip(_TRENDS_STATE, state, strict=True):
            setattr(self, name, value)


class RepaymentBehaviour(Signal):
    """How fully instalments get paid, fast versus slow, plus cures and recent partial payments.

    Each instalment gives one payment ratio, ``min(paid / due, 1)``: when it is paid in full, or
    ``grace_days`` after its due date if it is still short by then (seen at the first event of
    any kind after that day, or at ``now`` when scoring). A reversal of a settled instalment
    re-opens it and gives its ratio after the reversal at once. At most ``max_open`` instalments
    are followed; the one due first is dropped (and judged) to make room.

    Features (``score_one``):

    * ``payment_ratio_decline``: slow minus fast EW of the ratios (positive = paying less);
    * ``cures``: instalments paid in full after having been judged short (or reversed), i.e.
      delinquencies that were cured, counted since the start (at most 99);
    * ``partial_payments_90d``: payments in the last 90 days that left their instalment short
      (at most ``max_partials``).
    """

    name = "repay_trend"

    def __init__(
        self,
        fast_fading: float = 0.5,
        slow_fading: float = 0.1,
        grace_days: int = 10,
        max_open: int = 3,
        max_partials: int = 6,
    ) -> None:
        self.fast_fading = fast_fading
        self.slow_fading = slow_fading
        self.grace_days = grace_days
        self.max_open = max_open
        self.max_partials = max_partials
        self.fast = -1.0  # EW payment ratio; -1: no instalment judged yet
        self.slow = -1.0
        self.cures = 0
        self.partials: list[int] = []  # day ordinals of recent partial payments
        # [loan hash, instalment_no, due ordinal, due cents, paid cents, judged (0/1)]
        self.open: list[list[int]] = []

    @property
    def params(self) -> dict[str, Any]:
        return {
            "fast_fading": self.fast_fading,
            "slow_fading": self.slow_fading,
            "grace_days": self.grace_days,
            "max_open": self.max_open,
            "max_partials": self.max_partials,
        }

    def learn_one(self, event: Event) -> None:
        day = event.ts.toordinal()
        self._judge_passed(day)
        if not isinstance(event, Repayment):
            return
        loan = zlib.crc32(event.loan_id.encode()) & 0xFFFF
        entry = next((e for e in self.open if e[0] == loan and e[1] == event.instalment_no), None)
        due, paid = _cents(event.amount_due), _cents(event.amount_paid)
        new = [loan, event.instalment_no, event.due_date.toordinal(), due]
        if event.type is RepaymentType.DUE:
            entry = entry or self._add([*new, 0, 0])
            entry[3] = due
            entry[4] += paid
        elif event.type is RepaymentType.PAYMENT:
            entry = entry or self._add([*new, 0, 0])
            entry[4] += paid
            if 0 < paid < entry[3] and entry[4] < entry[3]:
                self.partials = sorted([*self.partials, day])[-self.max_partials :]
        else:  # reversal
            if entry is None:  # re-open a settled instalment and judge what is left of it
                entry = self._add([*new, due, 0])
            entry[4] = max(entry[4] - paid, 0)
            if not entry[5]:
                self._learn_ratio(entry)
                entry[5] = 1
        if entry[4] >= entry[3]:
            if entry[5]:
                if day > entry[2]:
                    self.cures = min(self.cures + 1, 99)
            else:
                self._learn_ratio(entry)
            self.open.remove(entry)
        self.partials = [p for p in self.partials if p > day - 90]

    def _add(self, entry: list[int]) -> list[int]:
        self.open.append(entry)
        if len(self.open) > self.max_open:
            oldest = min(self.open[:-1], key=lambda e: e[2])
            if not oldest[5]:
                self._learn_ratio(oldest)
            self.open.remove(oldest)
        return entry

    def _judge_passed(self, day: int) -> None:
        if not self.open:  # most events: nothing to judge
            return
        for entry in sorted(self.open, key=lambda e: e[2]):
            if not entry[5] and day > entry[2] + self.grace_days:
                self._learn_ratio(entry)
                entry[5] = 1

    def _learn_ratio(self, entry: list[int]) -> None:
        self.fast, self.slow = self._updated(self.fast, self.slow, _ratio(entry))

    def _updated(self, fast: float, slow: float, ratio: float) -> tuple[float, float]:
        if fast < 0:
            return ratio, ratio
        return (
            round(fast + self.fast_fading * (ratio - fast), 6),
            round(slow + self.slow_fading * (ratio - slow), 6),
        )

    def score_one(self, now: datetime) -> dict[str, float]:
        today = now.toordinal()
        fast, slow = self.fast, self.slow
        if self.open:
            for entry in sorted(self.open, key=lambda e: e[2]):  # what judging at ``now`` adds
                if not entry[5] and today > entry[2] + self.grace_days:
                    fast, slow = self._updated(fast, slow, _ratio(entry))
        partials = sum(1 for p in self.partials if 0 <= today - p < 90) if self.partials else 0
        return {
            "payment_ratio_decline": slow - fast if fast >= 0 else 0.0,
            "cures": float(self.cures),
            "partial_payments_90d": float(partials),
        }

    def to_state(self) -> Any:
        return [self.fast, self.slow, self.cures, list(self.partials), [list(e) for e in self.open]]

    def load_state(self, state: Any) -> None:
        fast, slow, self.cures, partials, entries = state
        self.fast, self.slow = float(fast), float(slow)
        self.partials = [int(p) for p in partials]
        self.open = [[int(v) for v in e] for e in entries]


def _ratio(entry: list[int]) -> float:
    due, paid = entry[3], entry[4]
    if due <= 0:
        return 1.0
    return min(max(paid / due, 0.0), 1.0)
