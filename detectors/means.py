"""The customer's means: the credit the bank granted and the money that came in lately.

Unlike the other signals these are context, not distress: a **lower** value is riskier (a small
credit line, little paid in). The online model learns their sign and weight; the expert
scorecard leaves them out. Logarithms, because a risk model reads a tenfold larger limit or
inflow as one step, not ten (on the UCI Taiwan card file, learning each customer's true label,
the log of the limit added 0.016 to a logistic model's ROC AUC, the logs of the payments made
0.006).

Features (``score_one``):

* ``credit_limit_log``: ``ln(1 + limit)``, the limit summed over the accounts that reported
  one, each at the latest value seen (at most ``max_accounts`` followed);
* ``inflow_1m_log``, ``inflow_3m_log``: ``ln(1 + credits)`` posted in the last 31 and 92 days
  (a calendar month and a quarter, whatever their lengths): salary, transfers in, payments onto
  a card. Card-channel credits are refunds, not means, and are left out.

Credits are kept as day totals in whole currency units (UTC calendar days of event time), at
most ``max_days`` of them: beyond that the two oldest are merged onto the older day, which can
only let money leave the windows early, never linger. A late credit goes on its own day.
"""

from __future__ import annotations

import math
import zlib
from datetime import datetime
from decimal import Decimal
from typing import Any

from detectors.base import Signal
from detectors.events import Channel, Direction, Event, Transaction, TxStatus

MONTH_DAYS = 31
QUARTER_DAYS = 92


class Means(Signal):
    """Credit limit and recent inflows, as logarithms."""

    name = "means"

    def __init__(self, max_accounts: int = 4, max_days: int = 12) -> None:
        self.max_accounts = max_accounts
        self.max_days = max_days
        self.limits: dict[int, int] = {}  # account hash -> latest limit in whole units
        self.credits: list[list[int]] = []  # [day ordinal, whole units], days rising
        # The (account, limit) learned last: most transactions repeat it, and need no update.
        self._latest: tuple[str, Decimal] | None = None
        self._saved: list[Any] | None = None  # to_state's answer until limits or credits change

    @property
    def params(self) -> dict[str, Any]:
        return {"max_accounts": self.max_accounts, "max_days": self.max_days}

    def learn_one(self, event: Event) -> None:
        if not isinstance(event, Transaction) or event.status is not TxStatus.POSTED:
            return
        limit = event.credit_limit
        if limit is not None and (event.account_id, limit) != self._latest:
            self._latest = (event.account_id, limit)
            self._saved = None
            account = zlib.crc32(event.account_id.encode()) & 0xFFFF
            self.limits.pop(account, None)
            self.limits[account] = int(max(limit, Decimal(0)))
            if len(self.limits) > self.max_accounts:
                del self.limits[next(iter(self.limits))]  # the one not heard from longest
        if event.direction is Direction.CREDIT and event.channel is not Channel.CARD:
            self._saved = None
            self._add(event.ts.toordinal(), int(event.amount))

    def _add(self, day: int, amount: int) -> None:
        credits = self.credits
        latest = credits[-1][0] if credits else day
        credits[:] = [c for c in credits if c[0] > max(latest, day) - QUARTER_DAYS]
        same = next((c for c in credits if c[0] == day), None)
        if same is not None:
            same[1] += amount
        else:
            credits.append([day, amount])
            credits.sort()
        if len(credits) > self.max_days:
            credits[0:2] = [[credits[0][0], credits[0][1] + credits[1][1]]]

    def score_one(self, now: datetime) -> dict[str, float]:
        limit, month, quarter = self._amounts(now)
        return {
            "credit_limit_log": math.log1p(limit),
            "inflow_1m_log": math.log1p(month),
            "inflow_3m_log": math.log1p(quarter),
        }

    def details(self, now: datetime) -> dict[str, str | float]:
        """The amounts themselves, for reason texts: ``credit_limit``, ``inflow_1m``,
        ``inflow_3m``."""
        limit, month, quarter = self._amounts(now)
        return {"credit_limit": limit, "inflow_1m": month, "inflow_3m": quarter}

    def _amounts(self, now: datetime) -> tuple[int, int, int]:
        """The credit limit, and the credits of the last month and quarter."""
        today = now.toordinal()
        month = quarter = 0
        for day, amount in self.credits:
            age = today - day
            if 0 <= age < QUARTER_DAYS:
                quarter += amount
                if age < MONTH_DAYS:
                    month += amount
        return sum(self.limits.values()), max(month, 0), max(quarter, 0)

    def to_state(self) -> Any:
        """``[[[account hash, limit], ...], [first day, amount, gap in days, amount, ...]]``,
        limits oldest first; each credit day after the first as its gap to the one before. Most
        events change neither, so the answer is kept until one does (callers only read it)."""
        if self._saved is None:
            flat: list[int] = []
            previous = 0
            for day, amount in self.credits:
                flat += [day - previous, amount]
                previous = day
            self._saved = [[[a, v] for a, v in self.limits.items()], flat]
        return self._saved

    def load_state(self, state: Any) -> None:
        limits, flat = state
        self._latest = self._saved = None
        self.limits = {int(a): int(v) for a, v in limits}
        self.credits, day = [], 0
        for gap, amount in zip(flat[::2], flat[1::2], strict=True):
            day += int(gap)
            self.credits.append([day, int(amount)])
