"""The expert scorecard: features to a probability-like score, with per-feature contributions."""

from __future__ import annotations

from dataclasses import dataclass

from config.rules import Rules
from detectors.calibration import sigmoid


@dataclass(frozen=True, slots=True)
class Contribution:
    feature: str
    value: float
    contribution: float  # weight * capped value, in log-odds


@dataclass(frozen=True, slots=True)
class Scored:
    score: float
    contributions: tuple[Contribution, ...]  # adverse ones first, largest first


class Scorecard:
    """``score = sigmoid(intercept + sum(weight * min(value, cap)))`` over configured features."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._terms = tuple((name, f.weight, f.cap) for name, f in rules.features.items())

    def probability(self, features: dict[str, float]) -> float:
        """The score alone, with the very arithmetic of :meth:`score_one` (the hot path)."""
        logit = self.rules.intercept
        get = features.get
        for name, weight, cap in self._terms:
            value = get(name, 0.0)
            logit += weight * (cap if cap < value else value)  # min(value, cap), without a call
        return sigmoid(logit)

    def score_one(self, features: dict[str, float]) -> Scored:
        logit = self.rules.intercept
        parts = []
        for name, spec in self.rules.features.items():
            value = features.get(name, 0.0)
            contribution = spec.weight * min(value, spec.cap)
            logit += contribution
            parts.append(Contribution(name, value, contribution))
        parts.sort(key=lambda c: (-c.contribution, c.feature))
        return Scored(sigmoid(logit), tuple(parts))
