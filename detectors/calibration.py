"""Online Platt scaling of a raw logit, and the metrics that check a probability is honest.

:class:`PlattCalibrator` maps a model's raw logit ``z`` to ``sigmoid(a * z + b)``. It keeps the
last ``window`` (logit, label) pairs and, every ``refit_every`` labels, refits ``a`` and ``b``
exactly by damped Newton's method on the window's log loss plus a small ridge that pulls towards
the identity (``a = 1, b = 0``). That is deterministic (fixed iteration order, no randomness),
needs no learning rate, cannot diverge (the ridge makes the loss strictly convex and every step
is checked to lower it) and forgets old behaviour as the window slides. Until its window holds
``min_examples`` labels it keeps its current ``(a, b)`` (the identity when new), so an
untrained calibrator changes nothing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

__all__ = [
    "PlattCalibrator",
    "brier",
    "expected_calibration_error",
    "roc_auc",
    "sigmoid",
    "softplus",
]

NEWTON_MAX_ITER = 50
NEWTON_TOL = 1e-12


def sigmoid(x: float) -> float:
    """The logistic function, stable for any finite ``x`` (no overflow, no hard cut-off)."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def softplus(x: float) -> float:
    """``log(1 + exp(x))`` without overflow."""
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


class PlattCalibrator:
    """Online Platt scaling: ``predict(z) = sigmoid(a * z + b)``, refit on a sliding window.

    >>> cal = PlattCalibrator(min_examples=4, refit_every=4)
    >>> cal.predict(0.0)
    0.5
    >>> for z, y in [(-2.0, False), (-1.0, False), (1.0, True), (2.0, False)]:
    ...     cal.learn_one(z, y)
    >>> 0.0 < cal.a < 1.0  # the logit was overconfident: the slope shrinks
    True
    """

    def __init__(
        self,
        window: int = 1000,
        refit_every: int = 100,
        min_examples: int = 100,
        ridge: float = 1.0,
    ) -> None:
        if window < 1 or refit_every < 1 or min_examples < 1:
            raise ValueError("window, refit_every and min_examples must be at least 1")
        if not ridge > 0.0:
            raise ValueError("ridge must be positive (it keeps the refit well posed)")
        self.window = window
        self.refit_every = refit_every
        self.min_examples = min_examples
        self.ridge = ridge
        self.a = 1.0
        self.b = 0.0
        self.n = 0
        self._logits: deque[float] = deque(maxlen=window)
        self._labels: deque[bool] = deque(maxlen=window)

    @property
    def params(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "refit_every": self.refit_every,
            "min_examples": self.min_examples,
            "ridge": self.ridge,
        }

    def clone(self) -> PlattCalibrator:
        return PlattCalibrator(**self.params)

    def predict(self, logit: float) -> float:
        """The calibrated probability for a raw logit."""
        return sigmoid(self.a * logit + self.b)

    def learn_one(self, logit: float, label: bool) -> None:
        """Remember one (raw logit, outcome) pair; refit on the window when one is due."""
        if not math.isfinite(logit):
            raise ValueError(f"logit must be finite, got {logit!r}")
        self._logits.append(float(logit))
        self._labels.append(bool(label))
        self.n += 1
        if len(self._logits) >= self.min_examples and self.n % self.refit_every == 0:
            self.refit()

    def refit(self) -> None:
        """Fit ``a, b`` exactly on the current window (damped Newton, warm-started)."""
        xs = list(self._logits)
        ys = [1.0 if y else 0.0 for y in self._labels]
        a, b = self.a, self.b
        loss = self._loss(xs, ys, a, b)
        for _ in range(NEWTON_MAX_ITER):
            ga = self.ridge * (a - 1.0)
            gb = self.ridge * b
            haa = hbb = self.ridge
            hab = 0.0
            for x, y in zip(xs, ys, strict=True):
                p = sigmoid(a * x + b)
                r = p - y
                w = p * (1.0 - p)
                ga += r * x
                gb += r
                haa += w * x * x
                hab += w * x
                hbb += w
            det = haa * hbb - hab * hab
            if not det > 0.0:
                break
            da = (hbb * ga - hab * gb) / det
            db = (haa * gb - hab * ga) / det
            step = 1.0
            while step > 1e-10:
                na, nb = a - step * da, b - step * db
                new_loss = self._loss(xs, ys, na, nb)
                if new_loss <= loss:
                    break
                step *= 0.5
            else:
                break
            a, b, loss = na, nb, new_loss
            if abs(step * da) + abs(step * db) < NEWTON_TOL:
                break
        self.a, self.b = a, b

    def _loss(self, xs: list[float], ys: list[float], a: float, b: float) -> float:
        total = 0.5 * self.ridge * ((a - 1.0) ** 2 + b * b)
        for x, y in zip(xs, ys, strict=True):
            s = a * x + b
            total += softplus(s) - y * s
        return total

    def to_state(self) -> dict[str, Any]:
        """Exact JSON-able state: the fitted ``a, b``, the count and the window."""
        return {
            "a": self.a,
            "b": self.b,
            "n": self.n,
            "x": list(self._logits),
            "y": [1 if y else 0 for y in self._labels],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`to_state` produced (into a calibrator with the same params)."""
        try:
            a, b, n, xs, ys = state["a"], state["b"], state["n"], state["x"], state["y"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bad calibrator state: missing {exc}") from None
        if len(xs) != len(ys) or len(xs) > self.window:
            raise ValueError("bad calibrator state: window lengths do not match")
        self.a, self.b, self.n = float(a), float(b), int(n)
        self._logits = deque((float(x) for x in xs), maxlen=self.window)
        self._labels = deque((bool(y) for y in ys), maxlen=self.window)


def _check(probs: Sequence[float], labels: Sequence[bool]) -> None:
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} probabilities but {len(labels)} labels")
    if not probs:
        raise ValueError("need at least one example")


def expected_calibration_error(
    probs: Sequence[float], labels: Sequence[bool], bins: int = 10
) -> float:
    """ECE: the example-weighted mean gap between predicted and observed rates, equal-width bins."""
    _check(probs, labels)
    if bins < 1:
        raise ValueError("bins must be at least 1")
    count = [0] * bins
    prob_sum = [0.0] * bins
    pos = [0] * bins
    for p, y in zip(probs, labels, strict=True):
        i = min(int(p * bins), bins - 1) if p > 0.0 else 0
        count[i] += 1
        prob_sum[i] += p
        pos[i] += 1 if y else 0
    total = len(probs)
    return sum(abs(prob_sum[i] - pos[i]) / total for i in range(bins) if count[i])


def brier(probs: Sequence[float], labels: Sequence[bool]) -> float:
    """Mean squared error of the probabilities against the 0/1 outcomes."""
    _check(probs, labels)
    return sum((p - (1.0 if y else 0.0)) ** 2 for p, y in zip(probs, labels, strict=True)) / len(
        probs
    )


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); needs both classes."""
    _check(scores, labels)
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum = 0.0
    n_pos = 0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mid_rank = (i + j) / 2.0 + 1.0  # average 1-based rank of the tied run
        for k in range(i, j + 1):
            if labels[order[k]]:
                rank_sum += mid_rank
                n_pos += 1
        i = j + 1
    n_neg = len(scores) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs at least one positive and one negative label")
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
