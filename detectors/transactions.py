"""Signals from account transactions: spend spikes, overdraft, returned payments, risky spend."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any

from detectors.base import Signal
from detectors.events import Channel, Direction, Event, Transaction, TxStatus
from detectors.stats import EWMeanVar, EWShare

GAMBLING_MCCS = frozenset({"7995", "7800", "7801", "7802"})
_ZERO = Decimal(0)


class SpendSpike(Signal):
    """Debit amounts against the customer's own log-amount baseline.

    ``spike_share`` is an exponentially weighted share of recent debits that sat more than
    ``z_threshold`` deviations above the baseline, counted only once ``min_observations`` debits
    have been learned, so one large purchase moves it a little and a run of them a lot.
    """

    name = "spend"

    def __init__(
        self, fading_factor: float = 0.05, z_threshold: float = 3.0, min_observations: int = 20
    ) -> None:
        self.fading_factor = fading_factor
        self.z_threshold = z_threshold
        self.min_observations = min_observations
        self.baseline = EWMeanVar(fading_factor)
        self.spikes = EWShare(fading_factor)

    @property
    def params(self) -> dict[str, Any]:
        return {
            "fading_factor": self.fading_factor,
            "z_threshold": self.z_threshold,
            "min_observations": self.min_observations,
        }

    def learn_one(self, event: Event) -> None:
        if not _is_posted_debit(event):
            return
        assert isinstance(event, Transaction)
        x = math.log1p(float(event.amount))
        if self.baseline.n >= self.min_observations:
            spiked = self.baseline.zscore(x, floor=0.25) > self.z_threshold
            self.spikes.update(1.0 if spiked else 0.0)
        self.baseline.update(x)

    def score_one(self, now: datetime) -> dict[str, float]:
        return {"spend_spike_share": self.spikes.get()}

    def to_state(self) -> Any:
        return [self.baseline.to_state(), self.spikes.to_state()]

    def load_state(self, state: Any) -> None:
        self.baseline.load_state(state[0])
        self.spikes.load_state(state[1])


class AccountConduct(Signal):
    """Overdraft, returned payments, cash advances and gambling as shares of recent activity."""

    name = "conduct"

    def __init__(self, fading_factor: float = 0.05) -> None:
        self.fading_factor = fading_factor
        self.overdrawn = EWShare(fading_factor)
        self.returned = EWShare(fading_factor)
        self.cash_advance = EWShare(fading_factor)
        self.gambling = EWShare(fading_factor)
        self.utilisation = 0.0

    @property
    def params(self) -> dict[str, Any]:
        return {"fading_factor": self.fading_factor}

    def learn_one(self, event: Event) -> None:
        if not isinstance(event, Transaction):
            return
        self.returned.update(1.0 if event.status is TxStatus.RETURNED else 0.0)
        if event.balance_after is not None:
            self.overdrawn.update(1.0 if event.balance_after < 0 else 0.0)
            if event.credit_limit:
                used = max(-event.balance_after, _ZERO) / event.credit_limit
                self.utilisation = round(float(used), 4)
        if _is_posted_debit(event):
            self.cash_advance.update(1.0 if event.channel is Channel.CASH_ADVANCE else 0.0)
            self.gambling.update(1.0 if event.mcc in GAMBLING_MCCS else 0.0)

    def score_one(self, now: datetime) -> dict[str, float]:
        return {
            "overdraft_share": self.overdrawn.get(),
            "returned_share": self.returned.get(),
            "cash_advance_share": self.cash_advance.get(),
            "gambling_share": self.gambling.get(),
            "overdraft_utilisation": self.utilisation,
        }

    def to_state(self) -> Any:
        return [  # EWShare.to_state() is its share: read directly, as this runs for every save
            self.overdrawn.share,
            self.returned.share,
            self.cash_advance.share,
            self.gambling.share,
            self.utilisation,
        ]

    def load_state(self, state: Any) -> None:
        for stat, value in zip(
            (self.overdrawn, self.returned, self.cash_advance, self.gambling), state, strict=False
        ):
            stat.load_state(value)
        self.utilisation = float(state[4])


def _is_posted_debit(event: Event) -> bool:
    return (
        isinstance(event, Transaction)
        and event.direction is Direction.DEBIT
        and event.status is TxStatus.POSTED
    )
