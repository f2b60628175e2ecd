"""The one small interface every per-customer signal implements.

A signal is River-style: ``score_one`` reads features without changing anything, ``learn_one``
folds an event in and returns nothing, and the caller always scores before it learns. ``__init__``
only stores parameters, so a fresh clone is ``type(s)(**s.params)``. State round-trips through a
compact JSON-able form for the changelog (``to_state``/``load_state``); never pickle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, ClassVar

from detectors.events import Event


class Signal(ABC):
    """A per-customer signal: learns from events, reports named features at a point in time."""

    name: ClassVar[str]

    @abstractmethod
    def learn_one(self, event: Event) -> None:
        """Fold one event into the state."""

    @abstractmethod
    def score_one(self, now: datetime) -> dict[str, float]:
        """Named features as of ``now`` (event time); higher means riskier. Pure read."""

    @abstractmethod
    def to_state(self) -> Any:
        """A compact JSON-able form of the learned state (not the parameters)."""

    @abstractmethod
    def load_state(self, state: Any) -> None:
        """Restore what :meth:`to_state` produced."""

    def wake_at(self, now: datetime) -> datetime | None:
        """The earliest event time after ``now`` at which :meth:`score_one` may report riskier
        features with no new event (a due date passing, an expected salary not arriving), or
        None. The sweep wakes silent customers then. Pure read."""
        return None

    def details(self, now: datetime) -> dict[str, str | float]:
        """Extra values reason texts may name (e.g. an expected salary date). Pure read."""
        return {}

    @property
    def params(self) -> dict[str, Any]:
        return {}

    def clone(self) -> Signal:
        return type(self)(**self.params)
