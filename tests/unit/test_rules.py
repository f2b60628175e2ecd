"""Alert rules and scorecard: the default file, and validation errors that name the field."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from config.rules import DEFAULT_RULES, LEVEL_NAMES, RulesError, load_rules, parse_rules


def _default_data() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_RULES.read_text())


def test_default_file_loads_with_version() -> None:
    """The packaged rules load, carry their version and rising, valid bands."""
    rules = load_rules()
    assert rules.version == _default_data()["version"]
    assert rules.version
    assert len(rules.bands) == len(LEVEL_NAMES)
    enters = [b.enter for b in rules.bands]
    assert enters == sorted(enters)
    assert all(0 < b.exit <= b.enter < 1 for b in rules.bands)
    assert 0 < rules.amber_dpd < rules.red_dpd
    assert "dpd" in rules.features
    assert all(isinstance(f.weight, float) for f in rules.features.values())


def test_load_rules_from_an_explicit_path(tmp_path: Path) -> None:
    """load_rules reads the given path instead of the packaged default."""
    path = tmp_path / "rules.toml"
    path.write_text(DEFAULT_RULES.read_text().replace('"rules-5"', '"rules-test-7"'))
    assert load_rules(path).version == "rules-test-7"


def test_default_feature_texts_format_a_number() -> None:
    """Every packaged reason text, the scorecard's and the model-only ``[texts]``, formats with a
    value (and details) and shows a number; every feature the signals report has one."""
    from detectors.state import FEATURE_NAMES

    details = {
        "inflow_expected_amount": 2400.0,
        "inflow_expected_date": "2025-03-28",
        "credit_limit": 50000,
        "inflow_1m": 0,
        "inflow_3m": 120,
    }
    rules = load_rules()
    texts = {**{name: spec.text for name, spec in rules.features.items()}, **rules.texts}
    for name, text in texts.items():
        assert any(ch.isdigit() for ch in text.format(value=0.37, **details)), name
    assert set(FEATURE_NAMES) <= set(texts)


@pytest.mark.parametrize(
    ("texts", "match"),
    [
        ({"utilisation": "{amount:.0%} used"}, r"texts\.utilisation: bad template"),
        ({"utilisation": 3}, r"texts\.utilisation: wrong type"),
        ({"dpd": "{value:.0f} days"}, r"texts\.dpd: a scorecard feature"),
        ([1, 2], r"texts: expected a table"),
    ],
)
def test_model_only_texts_are_checked(texts: Any, match: str) -> None:
    """``[texts]`` holds templates for features outside the scorecard, validated like its own."""

    def change(d: dict[str, Any]) -> None:
        d["texts"] = texts

    with pytest.raises(RulesError, match=match):
        parse_rules(_mutated(change))


def _mutated(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(_default_data())
    change(data)
    return data


def _drop_version(d: dict[str, Any]) -> None:
    del d["version"]


def _exit_above_enter(d: dict[str, Any]) -> None:
    d["levels"]["amber"]["exit"] = 0.50  # enter is 0.45


def _not_rising(d: dict[str, Any]) -> None:
    d["levels"]["amber"]["enter"] = 0.80  # above red's 0.75
    d["levels"]["amber"]["exit"] = 0.70


def _amber_not_below_red(d: dict[str, Any]) -> None:
    d["floors"]["amber_dpd"] = d["floors"]["red_dpd"]


def _weight_as_string(d: dict[str, Any]) -> None:
    d["scorecard"]["features"]["dpd"]["weight"] = "0.06"


def _missing_band(d: dict[str, Any]) -> None:
    del d["levels"]["red"]


def _dpd_as_float(d: dict[str, Any]) -> None:
    d["floors"]["red_dpd"] = 90.0


def _bool_cap(d: dict[str, Any]) -> None:
    d["scorecard"]["features"]["dpd"]["cap"] = True


def _ttl_below_horizon(d: dict[str, Any]) -> None:
    d["state"]["idle_ttl_days"] = d["model"]["horizon_days"] - 1


def _unknown_state_key(d: dict[str, Any]) -> None:
    d["state"]["ttl"] = 3


def _negative_warmup(d: dict[str, Any]) -> None:
    d["model"]["warmup_days"] = -1


def _steps_descending(d: dict[str, Any]) -> None:
    d["model"]["steps"] = {"dpd": [90, 60]}


def _step_of_an_unknown_feature(d: dict[str, Any]) -> None:
    d["model"]["steps"] = {"dpdd": [60]}


def _step_not_a_number(d: dict[str, Any]) -> None:
    d["model"]["steps"] = {"utilisation": [0.5, "0.9"]}


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (_drop_version, ["version", "missing"]),
        (_exit_above_enter, ["levels.amber", "exit"]),
        (_not_rising, ["levels", "rise"]),
        (_amber_not_below_red, ["floors", "amber_dpd", "red_dpd"]),
        (_weight_as_string, ["scorecard.features.dpd.weight", "wrong type"]),
        (_missing_band, ["levels.red", "missing"]),
        (_dpd_as_float, ["floors.red_dpd", "wrong type"]),
        (_bool_cap, ["scorecard.features.dpd.cap"]),
        (_ttl_below_horizon, ["state.idle_ttl_days", "horizon_days"]),
        (_unknown_state_key, ["state", "ttl"]),
        (_negative_warmup, ["model", "warmup_days"]),
        (_steps_descending, ["model.steps.dpd", "ascend"]),
        (_step_of_an_unknown_feature, ["model.steps", "dpdd"]),
        (_step_not_a_number, ["model.steps.utilisation", "'0.9'"]),
    ],
)
def test_parse_rules_errors_name_the_field(change: Any, names: list[str]) -> None:
    """Each invalid rule fails with RulesError whose message names the offending field."""
    with pytest.raises(RulesError) as info:
        parse_rules(_mutated(change))
    for name in names:
        assert name in str(info.value)


def test_load_rules_error_names_the_file(tmp_path: Path) -> None:
    """A bad rules file fails naming the file as well as the field."""
    path = tmp_path / "bad-rules.toml"
    path.write_text(DEFAULT_RULES.read_text().replace('version = "rules-5"', ""))
    with pytest.raises(RulesError, match=r"bad-rules\.toml.*version"):
        load_rules(path)


def test_unreadable_or_invalid_toml_is_a_rules_error(tmp_path: Path) -> None:
    """Missing files and TOML syntax errors become RulesError naming the file."""
    with pytest.raises(RulesError, match=r"nowhere\.toml"):
        load_rules(tmp_path / "nowhere.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("version = [\n")
    with pytest.raises(RulesError, match=r"broken\.toml"):
        load_rules(broken)


def test_feature_spec_that_is_not_a_table_is_a_rules_error() -> None:
    """`dpd = 0.06` instead of a table fails with RulesError naming the feature."""

    def change(d: dict[str, Any]) -> None:
        d["scorecard"]["features"]["dpd"] = 0.06

    with pytest.raises(RulesError, match=r"scorecard\.features\.dpd"):
        parse_rules(_mutated(change))


@pytest.mark.parametrize("text", ["{value:.0f days", "{amount:.0f} days", "{value:.0q}"])
def test_reason_text_that_cannot_format_is_a_rules_error(text: str) -> None:
    """A reason text that cannot format a number is rejected when the rules load."""

    def change(d: dict[str, Any]) -> None:
        d["scorecard"]["features"]["dpd"]["text"] = text

    with pytest.raises(RulesError, match=r"scorecard\.features\.dpd"):
        parse_rules(_mutated(change))


def test_packaged_steps_cut_features_the_signals_report() -> None:
    """``[model.steps]`` names features the model receives, so no step is silently constant."""
    from detectors.state import FEATURE_NAMES

    steps = load_rules().model.steps
    assert steps and set(steps) <= set(FEATURE_NAMES)
    assert all(list(cuts) == sorted(cuts) for cuts in steps.values())


def test_signal_details_stay_within_the_template_vocabulary() -> None:
    """Every detail a signal offers is a name reason texts may use, so templates validate."""
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from config.rules import TEMPLATE_NAMES
    from detectors.events import Channel, Direction, Transaction, TxStatus
    from detectors.state import default_signals

    start = datetime(2025, 1, 1, tzinfo=UTC)
    names: set[str] = set()
    for signal in default_signals():
        for month in range(6):
            signal.learn_one(
                Transaction(
                    f"e{month}",
                    "c1",
                    "a1",
                    start + timedelta(days=30 * month),
                    Decimal("2400.00"),
                    "EUR",
                    Direction.CREDIT,
                    Channel.SALARY,
                    TxStatus.POSTED,
                )
            )
        names |= set(signal.details(start + timedelta(days=200)))
    assert "inflow_expected_date" in names
    assert names <= TEMPLATE_NAMES
