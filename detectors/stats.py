"""Exponentially weighted statistics that speak River and serialise compactly.

River's own ``EWMean``/``EWVar`` keep their state in Rust objects that only pickle, and pickled
bytes have no place on a changelog topic. These implement the same protocol
(``update``/``get``, :class:`river.stats.base.Univariate`) with explicit state. Values are
rounded to ``DIGITS`` significant digits as they are learned (never when saved), so the saved
form is short and restoring it is exact.
"""

from __future__ import annotations

import math

from river import stats

DIGITS = 7
_FORMAT = f".{DIGITS}g"


def _r(x: float) -> float:
    return float(format(x, _FORMAT))


class EWMeanVar(stats.base.Univariate):
    """Exponentially weighted mean and variance (Finch 2009), with an observation count.

    >>> s = EWMeanVar(fading_factor=0.5)
    >>> for x in (1.0, 3.0, 5.0):
    ...     s.update(x)
    >>> round(s.get(), 3), round(s.variance, 3)
    (3.5, 2.75)
    """

    def __init__(self, fading_factor: float = 0.1) -> None:
        self.fading_factor = fading_factor
        self.mean = 0.0
        self.variance = 0.0
        self.n = 0

    def update(self, x: float) -> None:
        if self.n == 0:
            self.mean = _r(x)
        else:
            delta = x - self.mean
            self.mean = _r(self.mean + self.fading_factor * delta)
            self.variance = _r(
                (1 - self.fading_factor) * (self.variance + self.fading_factor * delta * delta)
            )
        self.n += 1

    def get(self) -> float:
        return self.mean

    def zscore(self, x: float, floor: float) -> float:
        """How many (floored) standard deviations ``x`` lies above the mean."""
        return (x - self.mean) / max(math.sqrt(self.variance), floor)

    def to_state(self) -> list[float]:
        return [self.mean, self.variance, self.n]

    def load_state(self, state: list[float]) -> None:
        self.mean, self.variance, n = state
        self.n = int(n)


class EWShare(stats.base.Univariate):
    """Exponentially weighted share of events for which a condition held (0..1)."""

    def __init__(self, fading_factor: float = 0.05) -> None:
        self.fading_factor = fading_factor
        self.share = 0.0

    def update(self, x: float) -> None:
        if x != self.share:  # else unchanged, exactly: most customers' shares sit at 0 or 1
            self.share = _r(self.share + self.fading_factor * (x - self.share))

    def get(self) -> float:
        return self.share

    def to_state(self) -> float:
        return self.share

    def load_state(self, state: float) -> None:
        self.share = float(state)
