"""Per-customer state and its compact changelog encoding (orjson, never pickle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from detectors.base import Signal
from detectors.levels import AlertState
from detectors.repayment import DaysPastDue
from detectors.transactions import AccountConduct, SpendSpike

STATE_VERSION = 1


def default_signals() -> list[Signal]:
    return [DaysPastDue(), SpendSpike(), AccountConduct()]


@dataclass(slots=True)
class CustomerState:
    """Everything the detector remembers about one customer.

    ``offsets`` holds, per source topic, the offset of the last event applied, so a redelivered
    event is recognised and skipped. ``watermark`` is the largest event time seen (epoch ms).
    """

    customer_id: str
    signals: list[Signal] = field(default_factory=default_signals)
    offsets: dict[str, int] = field(default_factory=dict)
    watermark_ms: int = 0
    alert: AlertState = field(default_factory=AlertState)
    score: float = 0.0
    events: int = 0
    late_events: int = 0

    @property
    def watermark(self) -> datetime:
        return datetime.fromtimestamp(self.watermark_ms / 1000, tz=UTC)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "v": STATE_VERSION,
                "c": self.customer_id,
                "o": self.offsets,
                "w": self.watermark_ms,
                "a": self.alert.to_state(),
                "s": self.score,
                "n": self.events,
                "z": self.late_events,
                "g": {s.name: s.to_state() for s in self.signals},
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> CustomerState:
        data: dict[str, Any] = orjson.loads(raw)
        if data.get("v") != STATE_VERSION:
            raise ValueError(f"unsupported customer state version {data.get('v')!r}")
        signals = default_signals()
        for signal in signals:
            if signal.name in data["g"]:
                signal.load_state(data["g"][signal.name])
        return cls(
            customer_id=data["c"],
            signals=signals,
            offsets=data["o"],
            watermark_ms=data["w"],
            alert=AlertState.from_state(data["a"]),
            score=data["s"],
            events=data["n"],
            late_events=data["z"],
        )
