"""Alert rules and the expert scorecard: typed, versioned, validated when loaded."""

from __future__ import annotations

import math
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_RULES = Path(__file__).with_name("rules.toml")
TEMPLATE_NAMES = frozenset(
    {
        "value",
        "inflow_expected_amount",
        "inflow_expected_date",
        "inflow_last_amount",
        "inflow_period_days",
        "credit_limit",
        "inflow_1m",
        "inflow_3m",
    }
)
"""Names a reason text may use: the feature's value and the details the signals offer."""
LEVEL_NAMES = ("watch", "amber", "red")
DEFAULT_IDLE_TTL_DAYS = 180


class RulesError(ValueError):
    """The rules file is unreadable or invalid; the message names the field."""


@dataclass(frozen=True, slots=True)
class FeatureWeight:
    weight: float
    cap: float
    text: str


@dataclass(frozen=True, slots=True)
class Band:
    """Enter a level at ``enter``; leave it only when the score falls below ``exit``."""

    enter: float
    exit: float


@dataclass(frozen=True, slots=True)
class ModelRules:
    """Labels and blending for the online model (see rules.toml ``[model]``)."""

    bad_dpd: int = 30
    severe_dpd: int = 90
    horizon_days: int = 90
    snapshot_every_days: int = 30
    warmup_days: int = 0
    min_labels: int = 200
    full_weight_labels: int = 2000
    steps: dict[str, tuple[float, ...]] = field(default_factory=dict)  # feature: ascending cuts

    def weight(self, n_labels: int) -> float:
        """The model's share of the blended score after ``n_labels`` labels."""
        if n_labels < self.min_labels:
            return 0.0
        span = max(self.full_weight_labels - self.min_labels, 1)
        return min(1.0, (n_labels - self.min_labels) / span)


@dataclass(frozen=True, slots=True)
class Escalation:
    """Event-time hours an amber or red alert may stay unanswered before on-call is told."""

    amber_hours: float = 48.0
    red_hours: float = 24.0

    def hours(self, level_name: str) -> float | None:
        """The SLA of a level (``amber`` or ``red``); None for the levels that have none."""
        return {"amber": self.amber_hours, "red": self.red_hours}.get(level_name)


@dataclass(frozen=True, slots=True)
class Rules:
    version: str
    intercept: float
    features: dict[str, FeatureWeight]
    bands: tuple[Band, Band, Band]  # watch, amber, red
    amber_dpd: int
    red_dpd: int
    resolve_after_days: int = 14
    cooldown_days: int = 7
    idle_ttl_days: int = DEFAULT_IDLE_TTL_DAYS
    model: ModelRules = field(default_factory=lambda: ModelRules())
    escalation: Escalation = field(default_factory=lambda: Escalation())
    texts: dict[str, str] = field(default_factory=dict)  # reason texts of model-only features


def load_rules(path: str | Path | None = None) -> Rules:
    """Read and validate a rules file (the packaged default when ``path`` is None)."""
    source = Path(path) if path else DEFAULT_RULES
    try:
        data = tomllib.loads(source.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RulesError(f"rules file {source}: {exc}") from exc
    try:
        return parse_rules(data)
    except RulesError as exc:
        raise RulesError(f"rules file {source}: {exc}") from exc


def parse_rules(data: dict[str, Any]) -> Rules:
    version = _get(data, "version", str)
    card = _get(data, "scorecard", dict)
    features = {
        name: _feature(name, spec)
        for name, spec in _get(card, "features", dict, "scorecard").items()
    }
    levels = _get(data, "levels", dict)
    bands = []
    for name in LEVEL_NAMES:
        spec = _get(levels, name, dict, "levels")
        band = Band(
            enter=float(_get(spec, "enter", (int, float), f"levels.{name}")),
            exit=float(_get(spec, "exit", (int, float), f"levels.{name}")),
        )
        if not 0.0 < band.exit <= band.enter < 1.0:
            raise RulesError(f"levels.{name}: need 0 < exit <= enter < 1, got {band}")
        bands.append(band)
    if not bands[0].enter < bands[1].enter < bands[2].enter:
        raise RulesError("levels: enter thresholds must rise from watch to amber to red")
    floors = _get(data, "floors", dict)
    amber_dpd = _get(floors, "amber_dpd", int, "floors")
    red_dpd = _get(floors, "red_dpd", int, "floors")
    if not 0 < amber_dpd < red_dpd:
        raise RulesError(f"floors: need 0 < amber_dpd < red_dpd, got {amber_dpd}, {red_dpd}")
    alerting = _get(data, "alerting", dict)
    resolve_after_days = _get(alerting, "resolve_after_days", int, "alerting")
    cooldown_days = _get(alerting, "cooldown_days", int, "alerting")
    if resolve_after_days < 0 or cooldown_days < 0:
        raise RulesError("alerting: resolve_after_days and cooldown_days must not be negative")
    model = _model_rules(data.get("model", {}))
    idle_ttl_days = _idle_ttl_days(data.get("state", {}), model)
    escalation = _escalation(data.get("escalation", {}))
    texts = _texts(data.get("texts", {}), features)
    unnamed = sorted(set(model.steps) - set(features) - set(texts))
    if unnamed:
        raise RulesError(f"model.steps: no scorecard feature or text named {unnamed}")
    return Rules(
        version=version,
        intercept=float(_get(card, "intercept", (int, float), "scorecard")),
        features=features,
        bands=(bands[0], bands[1], bands[2]),
        amber_dpd=amber_dpd,
        red_dpd=red_dpd,
        resolve_after_days=resolve_after_days,
        cooldown_days=cooldown_days,
        idle_ttl_days=idle_ttl_days,
        model=model,
        escalation=escalation,
        texts=texts,
    )


def _escalation(table: Any) -> Escalation:
    if not isinstance(table, dict):
        raise RulesError("escalation: expected a table")
    unknown = set(table) - {"amber_hours", "red_hours"}
    if unknown:
        raise RulesError(f"escalation: unknown keys {sorted(unknown)}")
    defaults = Escalation()
    hours = {
        name: float(_get(table, name, (int, float), "escalation"))
        if name in table
        else getattr(defaults, name)
        for name in ("amber_hours", "red_hours")
    }
    if min(hours.values()) <= 0:
        raise RulesError(f"escalation: hours must be positive, got {hours}")
    return Escalation(**hours)


def _idle_ttl_days(table: Any, model: ModelRules) -> int:
    if not isinstance(table, dict):
        raise RulesError("state: expected a table")
    unknown = set(table) - {"idle_ttl_days"}
    if unknown:
        raise RulesError(f"state: unknown keys {sorted(unknown)}")
    ttl: int = _get(table, "idle_ttl_days", int, "state") if table else DEFAULT_IDLE_TTL_DAYS
    if ttl < model.horizon_days:
        raise RulesError(
            f"state.idle_ttl_days: must be at least model.horizon_days ({model.horizon_days}), "
            f"so held snapshots mature before a customer is forgotten; got {ttl}"
        )
    return ttl


def _model_rules(table: Any) -> ModelRules:
    if not isinstance(table, dict):
        raise RulesError("model: expected a table")
    defaults = ModelRules()
    values = {
        name: _get(table, name, int, "model") if name in table else getattr(defaults, name)
        for name in (
            "bad_dpd",
            "severe_dpd",
            "horizon_days",
            "snapshot_every_days",
            "warmup_days",
            "min_labels",
            "full_weight_labels",
        )
    }
    unknown = set(table) - set(values) - {"steps"}
    if unknown:
        raise RulesError(f"model: unknown keys {sorted(unknown)}")
    if min(v for name, v in values.items() if name != "warmup_days") < 1:
        raise RulesError("model: every value but warmup_days must be at least 1")
    if values["warmup_days"] < 0:
        raise RulesError("model: warmup_days must be at least 0")
    if values["severe_dpd"] <= values["bad_dpd"]:
        raise RulesError("model: severe_dpd must be above bad_dpd")
    if values["full_weight_labels"] < values["min_labels"]:
        raise RulesError("model: full_weight_labels must be at least min_labels")
    return ModelRules(**values, steps=_steps(table.get("steps", {})))


def _steps(table: Any) -> dict[str, tuple[float, ...]]:
    """``[model.steps]``: per feature, the ascending cuts of its step indicators."""
    if not isinstance(table, dict):
        raise RulesError("model.steps: expected a table")
    steps = {}
    for feature, cuts in table.items():
        where = f"model.steps.{feature}"
        if not isinstance(cuts, list) or not cuts:
            raise RulesError(f"{where}: expected a non-empty list of numbers")
        for cut in cuts:
            if isinstance(cut, bool) or not isinstance(cut, int | float) or not math.isfinite(cut):
                raise RulesError(f"{where}: expected finite numbers, got {cut!r}")
        if sorted(set(cuts)) != cuts:
            raise RulesError(f"{where}: cuts must ascend without repeats, got {cuts}")
        steps[feature] = tuple(float(c) for c in cuts)
    return steps


def _feature(name: str, spec: Any) -> FeatureWeight:
    where = f"scorecard.features.{name}"
    if not isinstance(spec, dict):
        raise RulesError(f"{where}: expected a table with weight, cap and text")
    feature = FeatureWeight(
        weight=float(_get(spec, "weight", (int, float), where)),
        cap=float(_get(spec, "cap", (int, float), where)),
        text=_get(spec, "text", str, where),
    )
    _check_template(f"{where}.text", feature.text)
    return feature


def _texts(table: Any, features: dict[str, FeatureWeight]) -> dict[str, str]:
    """``[texts]``: reason texts for features the online model weighs but the scorecard does
    not (a scorecard feature's text is in its own table)."""
    if not isinstance(table, dict):
        raise RulesError("texts: expected a table of feature = text")
    for name, text in table.items():
        if name in features:
            raise RulesError(f"texts.{name}: a scorecard feature, its text goes in its own table")
        if not isinstance(text, str):
            raise RulesError(f"texts.{name}: wrong type {type(text).__name__}")
        _check_template(f"texts.{name}", text)
    return dict(table)


def _check_template(where: str, text: str) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
        unknown = names - TEMPLATE_NAMES
        if unknown:
            raise KeyError(f"unknown names {sorted(unknown)}; known: {sorted(TEMPLATE_NAMES)}")
        text.format(**dict.fromkeys(TEMPLATE_NAMES, 1.0))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise RulesError(f"{where}: bad template {text!r}: {exc!r}") from None


def _get(table: dict[str, Any], key: str, kind: Any, where: str = "") -> Any:
    name = f"{where}.{key}" if where else key
    if key not in table:
        raise RulesError(f"{name}: missing")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise RulesError(f"{name}: wrong type {type(value).__name__}")
    return value
