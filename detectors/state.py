"""Per-customer state and its compact changelog encoding (orjson, never pickle; deflated when
long)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from config.rules import ModelRules
from detectors.base import Signal
from detectors.conduct import AccountTrends, RepaymentBehaviour
from detectors.events import OutcomeKind
from detectors.inflow import RegularInflow
from detectors.labels import LabelMaturer
from detectors.levels import AlertState
from detectors.means import Means
from detectors.repayment import DaysPastDue
from detectors.transactions import AccountConduct, SpendSpike

STATE_VERSION = 1

DEFLATE_ABOVE = 960
"""An encoding longer than this is stored deflated (zlib, fastest level) behind a ``z``: the
most delinquent customers hold label snapshots before and in arrears, and their JSON passes 1 KB
(about 1,350 bytes at most over eight simulated months; deflated, about 700). Shorter ones, most
customers, stay plain JSON and cost nothing more."""
_DEFLATED = b"z"  # a plain encoding starts with "{"


def default_signals() -> list[Signal]:
    return [
        DaysPastDue(),
        RepaymentBehaviour(),
        RegularInflow(),
        AccountTrends(),
        SpendSpike(),
        AccountConduct(),
        Means(),
    ]


def _feature_names() -> tuple[str, ...]:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return tuple(sorted(name for s in default_signals() for name in s.score_one(epoch)))


FEATURE_NAMES = _feature_names()
"""Every feature the signals report, in a fixed order: the model's inputs and label snapshots."""


SNAPSHOT_DIGITS = 4
"""Significant digits of a stored snapshot value (relative error at most 5e-4): the snapshots
before and in arrears are the largest part of a delinquent customer's state."""


def default_labels(rules: ModelRules | None = None, *, warmup: bool = True) -> LabelMaturer:
    """A maturer as the rules configure it; ``warmup=False`` for snapshots taken in arrears."""
    rules = rules or ModelRules()
    return LabelMaturer(
        FEATURE_NAMES,
        snapshot_every_days=rules.snapshot_every_days,
        horizon_days=rules.horizon_days,
        significant_digits=SNAPSHOT_DIGITS,
        warmup_days=rules.warmup_days if warmup else 0.0,
    )


@dataclass(slots=True)
class CustomerState:
    """Everything the detector remembers about one customer.

    ``offsets`` holds, per source topic, the offset of the last event applied, so a redelivered
    event is recognised and skipped. ``watermark`` is the largest event time seen (epoch ms).
    ``declared`` is the latest outcome from ``ews.outcomes``. ``labels`` holds the snapshots
    taken before the customer went bad, ``arrears`` those taken while in arrears (see
    :meth:`detectors.engine.RiskDetector._mature`).
    """

    customer_id: str
    signals: list[Signal] = field(default_factory=default_signals)
    offsets: dict[str, int] = field(default_factory=dict)
    watermark_ms: int = 0
    alert: AlertState = field(default_factory=AlertState)
    labels: LabelMaturer = field(default_factory=default_labels)
    arrears: LabelMaturer = field(default_factory=default_labels)
    score: float = 0.0
    events: int = 0
    late_events: int = 0
    wake_day: int = 0  # the sweep day this customer is on the agenda for (0: none yet)
    declared: OutcomeKind | None = None  # the latest outcome the bank declared, if any
    _watermark: tuple[int, datetime] | None = field(
        default=None, init=False, repr=False, compare=False
    )  # (ms, as a datetime): an event reads it several times

    @property
    def watermark(self) -> datetime:
        memo = self._watermark
        if memo is None or memo[0] != self.watermark_ms:
            at = datetime.fromtimestamp(self.watermark_ms / 1000, tz=UTC)
            memo = self._watermark = (self.watermark_ms, at)
        return memo[1]

    def encode(self) -> bytes:
        extra: dict[str, Any] = {} if self.declared is None else {"d": self.declared.value}
        arrears = self.arrears
        if arrears.pending or arrears.bad or arrears.last_snapshot_ms is not None:
            extra["r"] = arrears.to_state()
        raw = orjson.dumps(
            {
                **extra,
                "v": STATE_VERSION,
                "c": self.customer_id,
                "o": self.offsets,
                "w": self.watermark_ms,
                "a": self.alert.to_state(),
                "m": self.labels.to_state(),
                "s": self.score,
                "n": self.events,
                "z": self.late_events,
                "k": self.wake_day,
                "g": {s.name: s.to_state() for s in self.signals},
            }
        )
        return raw if len(raw) <= DEFLATE_ABOVE else _DEFLATED + zlib.compress(raw, 1)

    @classmethod
    def decode(
        cls, raw: bytes, labels: LabelMaturer | None = None, arrears: LabelMaturer | None = None
    ) -> CustomerState:
        """Restore a state; ``labels`` and ``arrears`` are fresh maturers with the configured
        parameters."""
        if raw[:1] == _DEFLATED:
            raw = zlib.decompress(raw[1:])
        data: dict[str, Any] = orjson.loads(raw)
        if data.get("v") != STATE_VERSION:
            raise ValueError(f"unsupported customer state version {data.get('v')!r}")
        signals = default_signals()
        for signal in signals:
            if signal.name in data["g"]:
                signal.load_state(data["g"][signal.name])
        maturer = labels or default_labels()
        maturer.load_state(data["m"])
        in_arrears = arrears or default_labels()
        if "r" in data:
            in_arrears.load_state(data["r"])
        return cls(
            customer_id=data["c"],
            labels=maturer,
            arrears=in_arrears,
            signals=signals,
            offsets=data["o"],
            watermark_ms=data["w"],
            alert=AlertState.from_state(data["a"]),
            score=data["s"],
            events=data["n"],
            late_events=data["z"],
            wake_day=data.get("k", 0),
            declared=OutcomeKind(data["d"]) if "d" in data else None,
        )
