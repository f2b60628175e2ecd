"""Alert rules and the expert scorecard: typed, versioned, validated when loaded."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_RULES = Path(__file__).with_name("rules.toml")
LEVEL_NAMES = ("watch", "amber", "red")


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
class Rules:
    version: str
    intercept: float
    features: dict[str, FeatureWeight]
    bands: tuple[Band, Band, Band]  # watch, amber, red
    amber_dpd: int
    red_dpd: int
    resolve_after_days: int = 14
    cooldown_days: int = 7


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
    return Rules(
        version=version,
        intercept=float(_get(card, "intercept", (int, float), "scorecard")),
        features=features,
        bands=(bands[0], bands[1], bands[2]),
        amber_dpd=amber_dpd,
        red_dpd=red_dpd,
        resolve_after_days=resolve_after_days,
        cooldown_days=cooldown_days,
    )


def _feature(name: str, spec: Any) -> FeatureWeight:
    where = f"scorecard.features.{name}"
    if not isinstance(spec, dict):
        raise RulesError(f"{where}: expected a table with weight, cap and text")
    feature = FeatureWeight(
        weight=float(_get(spec, "weight", (int, float), where)),
        cap=float(_get(spec, "cap", (int, float), where)),
        text=_get(spec, "text", str, where),
    )
    try:
        feature.text.format(value=1.0)
    except (ValueError, KeyError, IndexError) as exc:
        raise RulesError(f"{where}.text: bad template {feature.text!r}: {exc!r}") from None
    return feature


def _get(table: dict[str, Any], key: str, kind: Any, where: str = "") -> Any:
    name = f"{where}.{key}" if where else key
    if key not in table:
        raise RulesError(f"{name}: missing")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise RulesError(f"{name}: wrong type {type(value).__name__}")
    return value
