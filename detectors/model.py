"""The global online risk model: a River trainer, its JSON parameters, and a pure-arithmetic scorer.

Three pieces, so that training and scoring can live in different processes:

- :class:`OnlineRiskModel` (the trainer) wraps River's ``StandardScaler`` and
  ``LogisticRegression`` plus a :class:`~detectors.calibration.PlattCalibrator`. Standardised
  values are clipped to ``[-Z_CLIP, Z_CLIP]`` between the two River steps, so one extreme value
  cannot swing the score or the learning.
- :class:`ModelParams` is everything a scorer needs, as an exact JSON document (orjson writes the
  shortest text that reads back to the same float, so nothing is rounded). Never pickled.
- :class:`ParamScorer` scores from those parameters with plain arithmetic (a few microseconds) and
  returns per-feature contributions for reason codes. It agrees with the trainer to ~1e-15.

Feature names are whatever keys arrive; a key the model knows but the input lacks is 0.0, and
a name first seen after ``n`` labels is treated as having been 0.0 in all ``n`` earlier ones.
Each feature ``f`` also gives the model an indicator ``f!=0`` (1.0 when ``f`` is not 0): most
features are zero for most customers (no days past due, no returned payment), and "any at all"
weighs differently from "how much" (on the UCI Taiwan file, `ews backtest`, these took the
customers' prequential ROC AUC from 0.724 to 0.734). A feature may also be given steps (the
trainer's ``steps``, from ``[model.steps]`` in the rules): an indicator ``f>=t`` per cut ``t``, so
that the model can weigh 60 days past due as more than twice 30, or a line nearly used up as worse
than its share. Contributions, and so reasons, are reported per feature, its indicators' added to
its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from river import linear_model, optim, preprocessing, utils

from detectors.calibration import PlattCalibrator, sigmoid
from detectors.scorecard import Contribution, Scored

__all__ = ["Z_CLIP", "ModelParams", "ModelScored", "OnlineRiskModel", "ParamScorer"]

PARAMS_SCHEMA = 1
STATE_SCHEMA = 1
Z_CLIP = 5.0
"""Standardised feature values are clipped to ``±Z_CLIP`` for learning and scoring alike."""
DEFAULT_LR = 0.005
"""SGD step. Each customer gives a label per snapshot (every 30 days), so labels come in
correlated runs; a step of 0.02 chased them: on the UCI Taiwan file the customers' prequential
ROC AUC rose from 0.694 to 0.715 over its first 9,280 customers with 0.005 (0.718 with 0.002)."""
DEFAULT_L2 = 1e-4
AVERAGE_OVER = 50_000
"""The weights scored are a running average of SGD's iterates over about this many labels
(Polyak averaging: each label moves the average by ``1 / min(n, AVERAGE_OVER)``). One customer's
snapshots come in correlated runs and the iterate chases them; its average is steadier and still
follows drift at this pace. On the UCI Taiwan file (`ews backtest`, rules with a 90-day warm-up)
the customers' prequential ROC AUC rose from 0.748 to 0.752. On a short stream the average trails
the iterate: young weights are smaller, which a young model can afford."""
INDICATOR = "!=0"
"""Suffix of a feature's nonzero indicator; input names may not end with it."""
STEP = ">="
"""Infix of a step indicator, ``f>=t``; input names may not contain it."""

_PARAM_FIELDS = (
    "schema",
    "version",
    "n_labels",
    "feature_names",
    "means",
    "variances",
    "weights",
    "intercept",
    "calibration",
)


def _clip(z: float) -> float:
    if z != z:  # NaN: no information, score it as the mean
        return 0.0
    return min(Z_CLIP, max(-Z_CLIP, z))


def _indicator(value: float) -> float:
    """1.0 for a nonzero value, 0.0 for zero; NaN stays NaN (scored as the mean)."""
    return value if value != value else 1.0 if value != 0.0 else 0.0


Source = tuple[str, float | None, bool]
"""What a model feature reads: the input feature; a step's cut (the value is 1.0 at or above it,
else 0.0), or None; and whether it is the feature's nonzero indicator."""


def _source(name: str) -> Source:
    """The input feature a model feature reads, and how (see :data:`Source`)."""
    if name.endswith(INDICATOR):
        return name[: -len(INDICATOR)], None, True
    feature, step, cut = name.partition(STEP)
    if step:
        return feature, float(cut), False
    return name, None, False


def _read(source: Source, features: Mapping[str, float]) -> float:
    """A model feature's value from the input features; NaN stays NaN (scored as the mean)."""
    name, cut, nonzero = source
    value = float(features.get(name, 0.0))
    if value != value:
        return value
    if cut is not None:
        return 1.0 if value >= cut else 0.0
    return _indicator(value) if nonzero else value


def _step_name(feature: str, cut: float) -> str:
    """The model feature of ``feature``'s step at ``cut``: ``dpd>=60.0``."""
    return f"{feature}{STEP}{float(cut)!r}"


def _check_input_name(name: Any) -> None:
    if not isinstance(name, str) or not name or name.endswith(INDICATOR) or STEP in name:
        raise ValueError(
            f"feature names must be non-empty strings not ending {INDICATOR!r} and without "
            f"{STEP!r}, got {name!r}"
        )


def _is_finite_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{where}: must be finite, got {number!r}")
    return number


@dataclass(frozen=True, slots=True)
class ModelParams:
    """One published model version: scaler statistics, weights, intercept and Platt ``(a, b)``.

    ``means``, ``variances`` and ``weights`` have exactly the keys in ``feature_names``.
    The calibrated probability is ``sigmoid(a * logit + b)`` with
    ``logit = intercept + sum(weight * clip((x - mean) / sqrt(variance)))`` (0 where variance is 0).
    """

    version: str
    n_labels: int
    feature_names: tuple[str, ...]
    means: dict[str, float]
    variances: dict[str, float]
    weights: dict[str, float]
    intercept: float
    calibration: tuple[float, float]
    n_negatives: int | None = None  # of n_labels; None in parameters published before it
    n_human_labels: int | None = None  # of n_labels, from people; None before it was counted

    def __post_init__(self) -> None:
        if not isinstance(self.version, str) or not self.version:
            raise ValueError("version: expected a non-empty string")
        if isinstance(self.n_labels, bool) or not isinstance(self.n_labels, int):
            raise ValueError("n_labels: expected an integer")
        if self.n_labels < 0:
            raise ValueError(f"n_labels: must be >= 0, got {self.n_labels}")
        for name in ("n_negatives", "n_human_labels"):
            count = getattr(self, name)
            if count is not None and (
                isinstance(count, bool)
                or not isinstance(count, int)
                or not 0 <= count <= self.n_labels
            ):
                raise ValueError(f"{name}: expected an integer in [0, n_labels], got {count!r}")
        if not isinstance(self.feature_names, tuple) or not all(
            isinstance(n, str) and n for n in self.feature_names
        ):
            raise ValueError("feature_names: expected a tuple of non-empty strings")
        if len(set(self.feature_names)) != len(self.feature_names):
            raise ValueError("feature_names: duplicate names")
        for name in self.feature_names:
            _, step, cut = name.partition(STEP)
            if step and not _is_finite_number(cut):
                raise ValueError(f"feature_names: {name!r} cuts at no finite number")
        names = set(self.feature_names)
        for field in ("means", "variances", "weights"):
            table = getattr(self, field)
            if not isinstance(table, dict):
                raise ValueError(f"{field}: expected an object")
            if set(table) != names:
                missing = sorted(names - set(table))
                extra = sorted(set(table) - names)
                raise ValueError(
                    f"{field}: keys differ from feature_names (missing {missing}, extra {extra})"
                )
            for name, value in table.items():
                _finite(value, f"{field}.{name}")
                if field == "variances" and value < 0.0:
                    raise ValueError(f"variances.{name}: must be >= 0, got {value!r}")
        _finite(self.intercept, "intercept")
        if not isinstance(self.calibration, tuple) or len(self.calibration) != 2:
            raise ValueError("calibration: expected [a, b]")
        _finite(self.calibration[0], "calibration.a")
        _finite(self.calibration[1], "calibration.b")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": PARAMS_SCHEMA,
            "version": self.version,
            "n_labels": self.n_labels,
            "feature_names": list(self.feature_names),
            "means": dict(self.means),
            "variances": dict(self.variances),
            "weights": dict(self.weights),
            "intercept": self.intercept,
            "calibration": [self.calibration[0], self.calibration[1]],
            **({} if self.n_negatives is None else {"n_negatives": self.n_negatives}),
            **({} if self.n_human_labels is None else {"n_human_labels": self.n_human_labels}),
        }

    def to_json(self) -> bytes:
        """Canonical, exact JSON: sorted keys, shortest round-tripping floats."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_dict(cls, data: Any) -> ModelParams:
        """Validate and build; every problem is a ``ValueError`` naming the field."""
        if not isinstance(data, dict):
            raise ValueError(f"model params: expected an object, got {type(data).__name__}")
        missing = [f for f in _PARAM_FIELDS if f not in data]
        if missing:
            raise ValueError(f"model params: missing {', '.join(missing)}")
        extra = sorted(set(data) - set(_PARAM_FIELDS) - {"n_negatives", "n_human_labels"})
        if extra:
            raise ValueError(f"model params: unknown fields {', '.join(extra)}")
        if data["schema"] != PARAMS_SCHEMA or isinstance(data["schema"], bool):
            raise ValueError(f"schema: unsupported model params schema {data['schema']!r}")
        names = data["feature_names"]
        if not isinstance(names, list):
            raise ValueError("feature_names: expected a list of strings")
        tables: dict[str, dict[str, float]] = {}
        for field in ("means", "variances", "weights"):
            table = data[field]
            if not isinstance(table, dict):
                raise ValueError(f"{field}: expected an object")
            tables[field] = {k: _finite(v, f"{field}.{k}") for k, v in table.items()}
        calibration = data["calibration"]
        if not isinstance(calibration, list) or len(calibration) != 2:
            raise ValueError("calibration: expected [a, b]")
        return cls(
            version=data["version"],
            n_labels=data["n_labels"],
            feature_names=tuple(names),
            means=tables["means"],
            variances=tables["variances"],
            weights=tables["weights"],
            intercept=_finite(data["intercept"], "intercept"),
            calibration=(
                _finite(calibration[0], "calibration.a"),
                _finite(calibration[1], "calibration.b"),
            ),
            n_negatives=data.get("n_negatives"),
            n_human_labels=data.get("n_human_labels"),
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> ModelParams:
        """Parse :meth:`to_json` output (JSON only: nothing is evaluated or unpickled)."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"model params: not JSON: {exc}") from None
        return cls.from_dict(data)


@dataclass(frozen=True, slots=True)
class ModelScored(Scored):
    """A model score: ``score`` is the calibrated probability; ``contributions`` (adverse first,
    largest first) are ``weight * clipped standardised value`` in raw log-odds, and
    ``intercept + sum(contributions) == logit``."""

    logit: float
    raw_score: float  # sigmoid(logit), before calibration
    intercept: float
    version: str


class ParamScorer:
    """Scores features from :class:`ModelParams` with plain float arithmetic (no River)."""

    def __init__(self, params: ModelParams) -> None:
        self.params = params
        names = params.feature_names
        self._sources = tuple(_source(n) for n in names)
        self._means = tuple(params.means[n] for n in names)
        self._stds = tuple(math.sqrt(params.variances[n]) for n in names)
        self._weights = tuple(params.weights[n] for n in names)
        terms = zip(self._sources, self._means, self._stds, self._weights, strict=True)
        self._terms = tuple((*src, m, sd, w) for src, m, sd, w in terms if sd)
        self._intercept = params.intercept
        self._a, self._b = params.calibration

    @property
    def version(self) -> str:
        return self.params.version

    def _standardised(self, features: Mapping[str, float]) -> list[float]:
        zs = []
        for source, mean, std in zip(self._sources, self._means, self._stds, strict=True):
            zs.append(_clip((_read(source, features) - mean) / std) if std else 0.0)
        return zs

    def logit(self, features: Mapping[str, float]) -> float:
        """The raw log-odds before calibration: the hot path, so the standardising and the
        clipping are inlined; the same operations in the same order as :meth:`score`."""
        total = self._intercept
        get = features.get
        for name, cut, flag, mean, std, w in self._terms:
            value = get(name, 0.0)
            if cut is not None:
                if value == value:
                    value = 1.0 if value >= cut else 0.0
            elif flag and value == value:
                value = 1.0 if value != 0.0 else 0.0
            z = (value - mean) / std
            z = 0.0 if z != z else Z_CLIP if z > Z_CLIP else -Z_CLIP if z < -Z_CLIP else z
            total += w * z
        return total

    def predict_proba(self, features: Mapping[str, float]) -> float:
        """The calibrated probability only (no contributions)."""
        return sigmoid(self._a * self.logit(features) + self._b)

    def score(self, features: Mapping[str, float]) -> ModelScored:
        """Calibrated probability plus per-feature contributions (an indicator's added to its
        feature's), adverse first."""
        zs = self._standardised(features)
        logit = self._intercept
        by_feature: dict[str, float] = {}
        for (source, _, _), w, z in zip(self._sources, self._weights, zs, strict=True):
            c = w * z
            logit += c
            by_feature[source] = by_feature.get(source, 0.0) + c
        parts = [Contribution(n, float(features.get(n, 0.0)), c) for n, c in by_feature.items()]
        parts.sort(key=lambda c: (-c.contribution, c.feature))
        return ModelScored(
            score=sigmoid(self._a * logit + self._b),
            contributions=tuple(parts),
            logit=logit,
            raw_score=sigmoid(logit),
            intercept=self._intercept,
            version=self.params.version,
        )


class OnlineRiskModel:
    """The trainer: ``StandardScaler`` → clip ``±Z_CLIP`` → ``LogisticRegression``, then Platt.

    Learning is prequential: callers score an example before they learn it, and the calibrator
    learns from the logit the model gave *before* it saw the label. SGD runs at a constant rate;
    the weights scored and published are the running average of its iterates (see
    :data:`AVERAGE_OVER`). Constant-rate SGD has no optimiser state, so :meth:`params`, the
    iterate and the calibrator window (:meth:`to_state`) are the whole model, and a restored
    trainer continues exactly as the original would have.
    """

    def __init__(
        self,
        lr: float = DEFAULT_LR,
        l2: float = DEFAULT_L2,
        intercept_lr: float = DEFAULT_LR,
        average_over: int = AVERAGE_OVER,
        steps: Mapping[str, Sequence[float]] | None = None,
        calibrator: PlattCalibrator | None = None,
    ) -> None:
        if average_over < 1:
            raise ValueError(f"average_over must be at least 1, got {average_over}")
        self.steps = {f: sorted({float(c) for c in cuts}) for f, cuts in (steps or {}).items()}
        for feature, cuts in self.steps.items():
            _check_input_name(feature)
            if not all(math.isfinite(c) for c in cuts):
                raise ValueError(f"steps of {feature!r}: cuts must be finite, got {cuts}")
        self.lr = lr
        self.l2 = l2
        self.intercept_lr = intercept_lr
        self.average_over = average_over
        self.calibrator = calibrator if calibrator is not None else PlattCalibrator()
        self._scaler = preprocessing.StandardScaler()
        self._lr = linear_model.LogisticRegression(
            optimizer=optim.SGD(lr), l2=l2, intercept_lr=intercept_lr
        )
        self._names: list[str] = []  # sorted, so the order never depends on the input's order
        self._sources: list[Source] = []  # what each of them reads
        self._weights: dict[str, float] = {}  # the averaged weights scored, by feature
        self._intercept = 0.0  # and the averaged intercept
        self._n = 0
        self._negatives = 0
        self._human = 0

    @property
    def hyperparams(self) -> dict[str, Any]:
        """Constructor arguments (River's ``_get_params`` idea), so ``clone`` starts fresh."""
        return {
            "lr": self.lr,
            "l2": self.l2,
            "intercept_lr": self.intercept_lr,
            "average_over": self.average_over,
            "steps": {f: list(cuts) for f, cuts in self.steps.items()},
        }

    def clone(self) -> OnlineRiskModel:
        return OnlineRiskModel(**self.hyperparams, calibrator=self.calibrator.clone())

    @property
    def n_labels(self) -> int:
        return self._n

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self._names)

    def _full(self, features: Mapping[str, float]) -> dict[str, float]:
        return {n: _read(s, features) for n, s in zip(self._names, self._sources, strict=True)}

    def _set_names(self, names: list[str]) -> None:
        self._names = sorted(names)
        self._sources = [_source(n) for n in self._names]

    def _standardised(self, x: dict[str, float]) -> dict[str, float]:
        scaled = self._scaler.transform_one(x)  # type: ignore[no-untyped-call]
        return {k: _clip(v) for k, v in scaled.items()}

    def logit(self, features: Mapping[str, float]) -> float:
        """The raw log-odds before calibration, from the averaged weights."""
        z = self._standardised(self._full(features))
        return float(utils.math.dot(self._weights, z)) + self._intercept

    def predict_proba(self, features: Mapping[str, float], *, calibrated: bool = True) -> float:
        """Probability of going bad; calibrated unless ``calibrated=False``."""
        logit = self.logit(features)
        return self.calibrator.predict(logit) if calibrated else sigmoid(logit)

    def learn_one(self, features: Mapping[str, float], label: bool, *, human: bool = False) -> None:
        """Learn one example (``human``: a person's label, counted apart). Raises
        ``ValueError`` on a non-finite feature value."""
        given: Mapping[str, object] = features  # checked as whatever a caller passed
        for name, value in given.items():
            _check_input_name(name)
            _finite(value, f"feature {name!r}")
        derived = {*features, *(n + INDICATOR for n in features)}
        derived.update(_step_name(n, c) for n in features for c in self.steps.get(n, ()))
        new = sorted(derived - set(self._names))
        if new:
            for name in new:  # as if it had been 0.0 in every earlier example
                self._scaler.counts[name] = self._n
                self._scaler.means[name] = 0.0
                self._scaler.vars[name] = 0.0
            self._set_names([*self._names, *new])
        self.calibrator.learn_one(self.logit(features), label)
        x = self._full(features)
        self._scaler.learn_one(x)  # type: ignore[no-untyped-call]
        self._lr.learn_one(self._standardised(x), bool(label))
        self._n += 1
        self._average()
        self._negatives += 0 if label else 1
        self._human += 1 if human else 0

    def _average(self) -> None:
        """Move the scored weights toward SGD's new iterate by ``1 / min(n, average_over)``."""
        step = 1.0 / min(self._n, self.average_over)
        iterate, averaged = self._lr.weights, self._weights
        for name in self._names:
            mean = averaged.get(name, 0.0)
            averaged[name] = mean + step * (float(iterate.get(name, 0.0)) - mean)
        self._intercept += step * (float(self._lr.intercept) - self._intercept)

    def params(self, version: str) -> ModelParams:
        """Export everything a :class:`ParamScorer` needs, exactly: the averaged weights."""
        weights = self._weights
        return ModelParams(
            version=version,
            n_labels=self._n,
            feature_names=tuple(self._names),
            means={n: float(self._scaler.means[n]) for n in self._names},
            variances={n: float(self._scaler.vars[n]) for n in self._names},
            weights={n: float(weights.get(n, 0.0)) for n in self._names},
            intercept=self._intercept,
            calibration=(float(self.calibrator.a), float(self.calibrator.b)),
            n_negatives=self._negatives,
            n_human_labels=self._human,
        )

    @classmethod
    def from_params(
        cls,
        params: ModelParams,
        lr: float = DEFAULT_LR,
        l2: float = DEFAULT_L2,
        intercept_lr: float = DEFAULT_LR,
        average_over: int = AVERAGE_OVER,
        calibrator: PlattCalibrator | None = None,
    ) -> OnlineRiskModel:
        """A trainer that predicts exactly as the one that exported ``params``.

        SGD resumes from the published (averaged) weights. The calibrator restarts with
        ``(a, b)`` and an empty window (it keeps them until it has ``min_examples`` new
        labels); use :meth:`to_state` for a bit-exact trainer restart. The steps are those
        the parameters name.
        """
        steps: dict[str, list[float]] = {}
        for feature, cut, _ in map(_source, params.feature_names):
            if cut is not None:
                steps.setdefault(feature, []).append(cut)
        model = cls(
            lr=lr,
            l2=l2,
            intercept_lr=intercept_lr,
            average_over=average_over,
            steps=steps,
            calibrator=calibrator,
        )
        model._load_params(params)
        model.calibrator.a, model.calibrator.b = params.calibration
        model.calibrator.n = params.n_labels
        return model

    def _load_params(self, params: ModelParams, iterate: Any = None) -> None:
        """Load published parameters; SGD's ``iterate`` (weights and intercept, as
        :meth:`to_state` writes it) if given, else the averaged ones."""
        self._set_names(list(params.feature_names))
        self._n = params.n_labels
        self._negatives = params.n_labels if params.n_negatives is None else params.n_negatives
        self._human = params.n_human_labels or 0
        for name in self._names:
            self._scaler.counts[name] = params.n_labels
            self._scaler.means[name] = params.means[name]
            self._scaler.vars[name] = params.variances[name]
        self._weights = {n: params.weights[n] for n in self._names}
        self._intercept = params.intercept
        weights, intercept = self._weights, params.intercept
        if iterate is not None:
            if not isinstance(iterate, dict) or set(iterate["weights"]) != set(self._names):
                raise ValueError("trainer state: the iterate's features differ from the params'")
            weights = {n: _finite(v, f"iterate.{n}") for n, v in iterate["weights"].items()}
            intercept = _finite(iterate["intercept"], "iterate.intercept")
        # River has no public weight setter; VectorDict is what LogisticRegression keeps.
        self._lr._weights = utils.VectorDict(dict(weights))
        self._lr.intercept = intercept
        self._lr.optimizer.n_iterations = params.n_labels

    def to_state(self) -> dict[str, Any]:
        """Exact JSON-able trainer state: hyperparameters, parameters (averaged), SGD's iterate
        and the calibrator."""
        iterate = self._lr.weights
        return {
            "schema": STATE_SCHEMA,
            "config": {**self.hyperparams, "calibrator": self.calibrator.params},
            "params": self.params("state").to_dict(),
            "iterate": {
                "weights": {n: float(iterate.get(n, 0.0)) for n in self._names},
                "intercept": float(self._lr.intercept),
            },
            "calibrator": self.calibrator.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OnlineRiskModel:
        """Restore :meth:`to_state`; learning then continues bit for bit."""
        if not isinstance(state, dict) or state.get("schema") != STATE_SCHEMA:
            raise ValueError("trainer state: unsupported or missing schema")
        try:
            config = dict(state["config"])
            calibrator = PlattCalibrator(**config.pop("calibrator"))
            model = cls(**config, calibrator=calibrator)
            model._load_params(ModelParams.from_dict(state["params"]), state.get("iterate"))
            calibrator.load_state(state["calibrator"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"trainer state: bad or missing field {exc}") from None
        return model
