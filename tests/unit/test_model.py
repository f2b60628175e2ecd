"""The online risk model, its JSON parameters and scorer, Platt calibration and label maturity."""

from __future__ import annotations

import dataclasses
import doctest
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

import detectors.calibration
from detectors.calibration import (
    PlattCalibrator,
    brier,
    expected_calibration_error,
    roc_auc,
    sigmoid,
)
from detectors.labels import LabelledExample, LabelMaturer, features_hash
from detectors.model import INDICATOR, Z_CLIP, ModelParams, OnlineRiskModel, ParamScorer
from detectors.scorecard import Scored

START = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
NAMES = (
    "dpd",
    "missed_instalments",
    "partial_instalments",
    "arrears",
    "overdraft_share",
    "returned_share",
    "cash_advance_share",
    "gambling_share",
    "spend_spike_share",
    "overdraft_utilisation",
    "inflow_drop",
    "inflow_irregularity",
    "salary_missing",
    "balance_trend",
    "limit_breaches",
)
TRUE_INTERCEPT = -9.5
TRUE_WEIGHTS = {
    "dpd": 0.09,
    "missed_instalments": 0.9,
    "overdraft_share": 3.75,
    "returned_share": 9.0,
    "cash_advance_share": 4.5,
    "gambling_share": 6.0,
    "spend_spike_share": 2.25,
}


def customer(rng: random.Random) -> dict[str, float]:
    """One synthetic customer's features (skewed shares, mostly-zero arrears, a noise feature)."""
    dpd = 0.0 if rng.random() < 0.8 else float(rng.randint(1, 60))
    return {
        "dpd": dpd,
        "missed_instalments": float(rng.randint(0, 3)) if dpd else 0.0,
        "arrears": dpd * rng.uniform(10.0, 500.0),
        "overdraft_share": rng.random() ** 3,
        "returned_share": rng.random() ** 6,
        "cash_advance_share": rng.random() ** 4,
        "gambling_share": rng.random() ** 8,
        "spend_spike_share": rng.random() ** 2,
        "noise": rng.gauss(0.0, 1.0),
    }


def true_logit(x: dict[str, float]) -> float:
    return TRUE_INTERCEPT + sum(w * x[k] for k, w in TRUE_WEIGHTS.items())


def stream(seed: int, n: int) -> list[tuple[dict[str, float], bool]]:
    """Labels drawn from a known logistic model over the features (base rate about 16%)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = customer(rng)
        out.append((x, rng.random() < sigmoid(true_logit(x))))
    return out


def trained(n: int = 600, seed: int = 1) -> OnlineRiskModel:
    model = OnlineRiskModel(calibrator=PlattCalibrator(min_examples=100, refit_every=50))
    for x, y in stream(seed, n):
        model.learn_one(x, y)
    return model


def probes(seed: int, n: int = 200) -> list[dict[str, float]]:
    """Scoring inputs: typical, extreme, partial (missing keys) and with unknown keys."""
    rng = random.Random(seed)
    out = [customer(rng) for _ in range(n)]
    out += [{"dpd": 1e9, "returned_share": -1e9}, {}, {"unknown": 5.0, "dpd": 3.0}]
    out += [{k: v * rng.uniform(-20, 20) for k, v in customer(rng).items()} for _ in range(20)]
    return out


MODEL = trained()
PARAMS = MODEL.params("model-7")


# -- parameters ----------------------------------------------------------------------------------


def test_params_json_round_trip_is_exact() -> None:
    """ModelParams survive JSON unchanged, and re-encoding gives the same bytes."""
    raw = PARAMS.to_json()
    back = ModelParams.from_json(raw)
    assert back == PARAMS
    assert back.to_json() == raw
    assert back.feature_names == tuple(sorted(back.feature_names))


def _mutated(change: Any) -> bytes:
    data = orjson.loads(PARAMS.to_json())
    change(data)
    return orjson.dumps(data)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "expected an object"),
        (_mutated(lambda d: d.pop("weights")), "weights"),
        (_mutated(lambda d: d.update(extra=1)), "extra"),
        (_mutated(lambda d: d.update(schema=2)), "schema"),
        (_mutated(lambda d: d.update(version="")), "version"),
        (_mutated(lambda d: d.update(n_labels=-1)), "n_labels"),
        (_mutated(lambda d: d.update(n_labels=True)), "n_labels"),
        (_mutated(lambda d: d.update(intercept="0.1")), "intercept"),
        (_mutated(lambda d: d.update(calibration=[1.0])), "calibration"),
        (_mutated(lambda d: d["means"].pop("dpd")), "means"),
        (_mutated(lambda d: d["weights"].update(dpd=None)), "weights.dpd"),
        (_mutated(lambda d: d["variances"].update(dpd=-1.0)), "variances.dpd"),
        (_mutated(lambda d: d.update(feature_names=[*d["feature_names"], "dpd"])), "duplicate"),
        (PARAMS.to_json().replace(b'"intercept":', b'"intercept":1e999,"x":'), "infinity"),
    ],
)
def test_bad_params_are_rejected_with_the_field_named(raw: bytes, field: str) -> None:
    """Malformed parameter documents raise ValueError naming what is wrong."""
    with pytest.raises(ValueError, match=field):
        ModelParams.from_json(raw)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"intercept": math.nan}, "intercept"),
        ({"calibration": (1.0, math.inf)}, "calibration.b"),
        ({"weights": {**PARAMS.weights, "dpd": math.nan}}, "weights.dpd"),
    ],
)
def test_params_cannot_be_built_invalid(change: dict[str, Any], field: str) -> None:
    """The constructor itself refuses non-finite numbers and malformed fields."""
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(PARAMS, **change)


def test_params_refuse_feature_names_in_a_list() -> None:
    """A list where the tuple belongs is refused too: by the check (ValueError) when run
    interpreted, by the constructor's own type check (TypeError) when compiled (config.native)."""
    with pytest.raises((TypeError, ValueError), match=r"feature_names|tuple"):
        dataclasses.replace(PARAMS, feature_names=list(PARAMS.feature_names))


def test_from_params_predicts_identically() -> None:
    """A trainer restored from params predicts what the original did, to 1e-12."""
    restored = OnlineRiskModel.from_params(ModelParams.from_json(PARAMS.to_json()))
    for x in probes(2):
        assert abs(restored.predict_proba(x) - MODEL.predict_proba(x)) <= 1e-12
        assert abs(restored.logit(x) - MODEL.logit(x)) <= 1e-12
    assert restored.params("model-7") == PARAMS


def test_scorer_equals_the_model() -> None:
    """ParamScorer's calibrated and raw probabilities equal the trainer's to 1e-12."""
    scorer = ParamScorer(PARAMS)
    assert PARAMS.calibration != (1.0, 0.0)  # the calibrator has actually moved
    for x in probes(3):
        result = scorer.score(x)
        assert isinstance(result, Scored) and result.version == "model-7"
        assert abs(result.score - MODEL.predict_proba(x)) <= 1e-12
        assert abs(result.raw_score - MODEL.predict_proba(x, calibrated=False)) <= 1e-12
        assert scorer.predict_proba(x) == result.score


def test_contributions_sum_to_the_logit_adverse_first() -> None:
    """Intercept plus contributions is the logit; contributions are sorted largest first."""
    scorer = ParamScorer(PARAMS)
    for x in probes(4):
        result = scorer.score(x)
        total = result.intercept + sum(c.contribution for c in result.contributions)
        assert abs(total - result.logit) <= 1e-12
        assert abs(sigmoid(result.logit) - result.raw_score) <= 1e-15
        values = [c.contribution for c in result.contributions]
        assert values == sorted(values, reverse=True)
        inputs = {n for n in PARAMS.feature_names if not n.endswith(INDICATOR)}
        assert {c.feature for c in result.contributions} == inputs


def test_each_feature_has_a_nonzero_indicator_whose_share_goes_to_the_feature() -> None:
    """The model learns ``f!=0`` beside each ``f``; "any at all" is learned where the amount
    says nothing, and the contribution is reported under ``f``."""
    rng = random.Random(12)
    model = OnlineRiskModel()
    for _ in range(6000):  # the averaged weights scored trail SGD's iterate on a short stream
        returned = rng.choice([0.0, 0.0, 0.0, rng.uniform(1.0, 9.0)])
        noise = rng.gauss(0.0, 1.0)
        model.learn_one({"returned": returned, "noise": noise}, returned > 0 and rng.random() < 0.8)
    params = model.params("v")
    assert params.feature_names == ("noise", "noise!=0", "returned", "returned!=0")
    assert params.weights["returned!=0"] > params.weights["returned"] > 0

    def risk(amount: float) -> float:
        return model.predict_proba({"returned": amount, "noise": 0.0}, calibrated=False)

    assert risk(0.0) < 0.1 and risk(1.0) - risk(0.0) > 0.4  # the step at zero, learned
    parts = {c.feature: c for c in ParamScorer(params).score({"returned": 2.0}).contributions}
    assert set(parts) == {"noise", "returned"} and parts["returned"].value == 2.0
    with pytest.raises(ValueError, match="!=0"):
        model.learn_one({"returned!=0": 1.0}, True)


def test_steps_learn_a_jump_the_value_alone_cannot_and_report_under_the_feature() -> None:
    """With steps at 60 and 90, the model weighs ``dpd>=60.0`` and ``dpd>=90.0`` beside ``dpd``
    and ``dpd!=0``: risk that jumps at 60 is learned as a jump. The scorer reads the cuts from the
    names, agrees with the trainer, and reports the steps' shares under ``dpd``."""
    rng = random.Random(21)
    model = OnlineRiskModel(steps={"dpd": [90, 60]})
    plain = OnlineRiskModel()
    for _ in range(6000):
        dpd = float(rng.choice([0, 0, 0, 30, 30, 60, 60, 90]))
        bad = rng.random() < (0.8 if dpd >= 60 else 0.1)
        model.learn_one({"dpd": dpd}, bad)
        plain.learn_one({"dpd": dpd}, bad)
    params = model.params("v")
    assert params.feature_names == ("dpd", "dpd!=0", "dpd>=60.0", "dpd>=90.0")
    assert params.weights["dpd>=60.0"] > 0.5

    def jump(m: OnlineRiskModel) -> float:
        risk = [m.predict_proba({"dpd": d}, calibrated=False) for d in (30.0, 60.0)]
        return risk[1] - risk[0]

    assert jump(model) > 0.45 > jump(plain) + 0.1
    scorer = ParamScorer(params)
    for dpd in (0.0, 30.0, 59.9, 60.0, 90.0, 1e9, math.nan):
        scored = scorer.score({"dpd": dpd})
        assert scored.logit == scorer.logit({"dpd": dpd})
        assert abs(scored.logit - model.logit({"dpd": dpd})) <= 1e-12
        assert [c.feature for c in scored.contributions] == ["dpd"]
    restored = OnlineRiskModel.from_state(orjson.loads(orjson.dumps(model.to_state())))
    assert restored.steps == {"dpd": [60.0, 90.0]}
    assert OnlineRiskModel.from_params(params).steps == {"dpd": [60.0, 90.0]}
    with pytest.raises(ValueError, match=">="):
        model.learn_one({"dpd>=60.0": 1.0}, True)
    bad = {**params.to_dict(), "feature_names": ["dpd", "dpd!=0", "dpd>=sixty", "dpd>=90.0"]}
    with pytest.raises(ValueError, match="'dpd>=sixty' cuts at no finite number"):
        ModelParams.from_dict(bad)


def test_extreme_values_are_clipped_at_five_standard_deviations() -> None:
    """A huge value contributes exactly weight * 5, a huge negative one weight * -5."""
    result = ParamScorer(PARAMS).score({"dpd": 1e12, "returned_share": -1e12})
    by_name = {c.feature: c for c in result.contributions}

    def nonzero(name: str) -> float:  # the indicator's share, added to the feature's
        key = name + INDICATOR
        if PARAMS.variances[key] == 0.0:
            return 0.0
        z = (1.0 - PARAMS.means[key]) / math.sqrt(PARAMS.variances[key])
        return PARAMS.weights[key] * max(-Z_CLIP, min(Z_CLIP, z))

    dpd, returned = PARAMS.weights["dpd"], PARAMS.weights["returned_share"]
    assert by_name["dpd"].contribution == dpd * Z_CLIP + nonzero("dpd")
    assert by_name["returned_share"].contribution == returned * -Z_CLIP + nonzero("returned_share")
    assert by_name["dpd"].value == 1e12


def test_learning_reaches_a_good_prequential_auc() -> None:
    """Scored before learned, the model ranks a separable stream with ROC AUC above 0.9. (The
    averaged weights trail SGD's iterate: 24,000 labels for every true weight to pass 0.3.)"""
    model = OnlineRiskModel()
    data = stream(5, 24_000)
    scores, labels = [], []
    for x, y in data:
        scores.append(model.predict_proba(x))
        labels.append(y)
        model.learn_one(x, y)
    auc = roc_auc(scores, labels)
    best = roc_auc([true_logit(x) for x, _ in data], labels)  # the true model's own AUC
    assert auc > 0.9 and auc > best - 0.03, (auc, best)
    weights = model.params("v").weights
    assert min(weights[k] for k in TRUE_WEIGHTS) > 0.3
    assert abs(weights["noise"]) < 0.2


def test_training_is_deterministic_whatever_the_key_order() -> None:
    """The same examples give the same parameter bytes, even with keys reordered or absent."""
    data = stream(6, 500)
    first = OnlineRiskModel()
    second = OnlineRiskModel()
    for x, y in data:
        first.learn_one(x, y)
        shuffled = dict(reversed([(k, v) for k, v in x.items() if v != 0.0]))
        second.learn_one(shuffled, y)
    assert first.params("v").to_json() == second.params("v").to_json()


def test_a_feature_first_seen_late_counts_as_zero_before() -> None:
    """A name that appears after n labels is as if it had been 0.0 in all n earlier ones."""
    data = stream(7, 300)
    late = OnlineRiskModel()
    explicit = OnlineRiskModel()
    for i, (x, y) in enumerate(data):
        x = {**x, "new": 1.0 if i % 3 == 0 and i > 150 else 0.0}
        explicit.learn_one(x, y)
        late.learn_one(x if i > 150 else {k: v for k, v in x.items() if k != "new"}, y)
    assert late.params("v").to_json() == explicit.params("v").to_json()


def test_trainer_state_round_trip_continues_bit_for_bit() -> None:
    """A trainer restored from to_state learns on exactly as the uninterrupted one."""
    original = trained(400, seed=8)
    restored = OnlineRiskModel.from_state(orjson.loads(orjson.dumps(original.to_state())))
    for x, y in stream(9, 300):
        original.learn_one(x, y)
        restored.learn_one(x, y)
    assert restored.params("v").to_json() == original.params("v").to_json()
    assert restored.n_labels == original.n_labels == 700


def test_the_weights_scored_are_the_average_of_the_sgd_iterates() -> None:
    """Each label moves the published weights by ``1 / min(n, average_over)`` toward SGD's new
    iterate: the plain mean of the iterates up to ``average_over`` labels, then an exponential
    one. With ``average_over=1`` the iterate itself is scored."""
    averaged, plain = OnlineRiskModel(average_over=3), OnlineRiskModel(average_over=1)
    iterates: list[dict[str, float]] = []
    for x, y in stream(10, 5):
        averaged.learn_one(x, y)
        plain.learn_one(x, y)
        state = averaged.to_state()["iterate"]
        iterates.append({**state["weights"], "": state["intercept"]})
    assert plain.params("v").weights == plain.to_state()["iterate"]["weights"]
    expected = {name: 0.0 for name in iterates[-1]}
    for n, iterate in enumerate(iterates, start=1):
        step = 1.0 / min(n, 3)
        expected = {k: v + step * (iterate.get(k, 0.0) - v) for k, v in expected.items()}
    params = averaged.params("v")
    assert params.weights == pytest.approx({k: v for k, v in expected.items() if k})
    assert params.intercept == pytest.approx(expected[""])
    assert params.weights != {k: v for k, v in iterates[-1].items() if k}


def test_a_trainer_state_from_before_averaging_resumes_from_its_weights() -> None:
    """A state without ``iterate`` (written before averaging) resumes SGD from its weights."""
    state = trained(100, seed=11).to_state()
    del state["iterate"]
    restored = OnlineRiskModel.from_state(state)
    assert restored.to_state()["iterate"]["weights"] == state["params"]["weights"]
    assert restored.params("v").weights == state["params"]["weights"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "1.0"])
def test_learning_rejects_non_finite_features(value: Any) -> None:
    """A non-finite or non-numeric feature value is refused, leaving the model unchanged."""
    model = trained(50)
    before = model.params("v").to_json()
    with pytest.raises(ValueError, match="dpd"):
        model.learn_one({"dpd": value}, True)
    assert model.params("v").to_json() == before


def test_scoring_tolerates_nan_as_the_mean() -> None:
    """At scoring time a NaN feature contributes nothing rather than poisoning the score."""
    scorer = ParamScorer(PARAMS)
    result = scorer.score({"dpd": math.nan})
    assert math.isfinite(result.score)
    assert {c.feature: c.contribution for c in result.contributions}["dpd"] == 0.0


def test_untrained_model_scores_one_half() -> None:
    """Before any label the model is neutral: probability 0.5, no features, identity Platt."""
    params = OnlineRiskModel().params("v0")
    assert params.n_labels == 0 and params.feature_names == () and params.calibration == (1.0, 0.0)
    assert ParamScorer(ModelParams.from_json(params.to_json())).score({"dpd": 9.0}).score == 0.5


# -- calibration ---------------------------------------------------------------------------------


def miscalibrated(seed: int, n: int) -> list[tuple[float, bool]]:
    """Raw logits that are overconfident and biased: the truth is sigmoid(0.4 z - 1)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        z = rng.gauss(0.0, 3.0)
        out.append((z, rng.random() < sigmoid(0.4 * z - 1.0)))
    return out


def test_platt_reduces_calibration_error() -> None:
    """On an overconfident stream, prequential Platt probabilities have a far lower ECE."""
    calibrator = PlattCalibrator()
    raw, calibrated, labels = [], [], []
    for i, (z, y) in enumerate(miscalibrated(10, 3000)):
        if i >= 1000:
            raw.append(sigmoid(z))
            calibrated.append(calibrator.predict(z))
            labels.append(y)
        calibrator.learn_one(z, y)
    ece_raw = expected_calibration_error(raw, labels)
    ece_cal = expected_calibration_error(calibrated, labels)
    assert ece_raw > 0.1 and ece_cal < 0.03, (ece_raw, ece_cal)
    assert brier(calibrated, labels) < brier(raw, labels)
    assert abs(calibrator.a - 0.4) < 0.1 and abs(calibrator.b + 1.0) < 0.2


def test_platt_is_the_identity_until_it_has_enough_examples() -> None:
    """Fewer than min_examples labels leave predictions untouched."""
    calibrator = PlattCalibrator(min_examples=100, refit_every=10)
    for z, y in miscalibrated(11, 99):
        calibrator.learn_one(z, y)
    assert (calibrator.a, calibrator.b) == (1.0, 0.0)
    assert calibrator.predict(2.0) == sigmoid(2.0)


def test_platt_state_round_trip_is_exact() -> None:
    """A restored calibrator keeps learning exactly as the original."""
    original = PlattCalibrator(window=300, refit_every=25, min_examples=50)
    data = miscalibrated(12, 800)
    for z, y in data[:500]:
        original.learn_one(z, y)
    restored = original.clone()
    restored.load_state(orjson.loads(orjson.dumps(original.to_state())))
    for z, y in data[500:]:
        original.learn_one(z, y)
        restored.learn_one(z, y)
    assert restored.to_state() == original.to_state()
    assert len(original.to_state()["x"]) == 300


def test_metrics_on_known_cases() -> None:
    """AUC, ECE and Brier give the textbook values on tiny inputs."""
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [False, True, False, True]) == 0.5
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert brier([1.0, 0.0, 0.5], [True, False, True]) == pytest.approx(0.25 / 3)
    assert expected_calibration_error([0.25] * 4, [True, False, False, False]) == 0.0
    assert expected_calibration_error([0.9, 0.9], [False, False]) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="positive and one negative"):
        roc_auc([0.1, 0.2], [True, True])


# -- label maturity -------------------------------------------------------------------------------


def snapshot_features(rng: random.Random) -> dict[str, float]:
    """A realistic 15-feature snapshot: counts and days as integers, shares as floats."""
    x = customer(rng)
    x.pop("noise")
    x["partial_instalments"] = 0.0
    x["overdraft_utilisation"] = round(rng.random(), 4)
    x["inflow_drop"] = rng.random()
    x["inflow_irregularity"] = rng.random()
    x["salary_missing"] = float(rng.random() < 0.1)
    x["balance_trend"] = rng.gauss(0.0, 1.0)
    x["limit_breaches"] = float(rng.randint(0, 2))
    return x


def test_a_positive_is_held_until_its_horizon_like_a_negative() -> None:
    """Going bad a day after a snapshot marks it positive, but it is emitted, matured, at
    snapshot + horizon, so each cohort's positives reach the trainer with its negatives."""
    maturer = LabelMaturer(NAMES)
    x = snapshot_features(random.Random(20))
    assert maturer.snapshot(START, x)
    assert maturer.observe(START + DAY, bad=False) == []
    assert maturer.observe(START + DAY, bad=True) == []
    assert maturer.observe(START + 89 * DAY, bad=True) == []
    (example,) = maturer.observe(START + 95 * DAY, bad=False)  # cured by then: still positive
    assert example.label is True and example.delay_days == 90.0
    assert example.snapshot_ts == START and example.matured_ts == START + 90 * DAY
    assert example.features == {n: maturer.quantise(x.get(n, 0.0)) for n in NAMES}
    assert maturer.pending == []


def test_a_held_positive_survives_the_state_encoding() -> None:
    """The positive mark is part of the exact state: a restarted worker emits the same label."""
    maturer = LabelMaturer(NAMES)
    maturer.snapshot(START, {"dpd": 1.0})
    maturer.observe(START + 10 * DAY, bad=True)
    restored = LabelMaturer(NAMES)
    restored.load_state(orjson.loads(orjson.dumps(maturer.to_state())))
    assert restored.to_state() == maturer.to_state()
    ((_, label),) = [(e.snapshot_ts, e.label) for e in restored.observe(START + 90 * DAY, True)]
    assert label is True


def test_negative_only_once_the_horizon_has_passed() -> None:
    """Not one day before the 90-day horizon; at it, a negative stamped at snapshot + 90 days."""
    maturer = LabelMaturer(NAMES)
    maturer.snapshot(START, {"dpd": 0.0})
    assert maturer.observe(START + 89 * DAY, bad=False) == []
    assert maturer.observe(START + 90 * DAY - timedelta(milliseconds=1), bad=False) == []
    (example,) = maturer.observe(START + 95 * DAY, bad=False)
    assert example.label is False and example.matured_ts == START + 90 * DAY
    assert example.delay_days == 90.0 and maturer.pending == []


def test_bad_after_an_unobserved_horizon_splits_old_and_new_snapshots() -> None:
    """Going bad makes only snapshots younger than the horizon positive; older ones are negative."""
    maturer = LabelMaturer(NAMES)
    for day in (0, 30, 60, 90):
        assert maturer.snapshot(START + day * DAY, {"dpd": float(day)})
    examples = maturer.observe(START + 100 * DAY, bad=True)
    assert [(e.snapshot_ts, e.label) for e in examples] == [(START, False)]
    later = maturer.observe(START + 200 * DAY, bad=False)
    assert [(e.snapshot_ts, e.label) for e in later] == [
        (START + 30 * DAY, True),
        (START + 60 * DAY, True),
        (START + 90 * DAY, True),
    ]
    assert later[0].matured_ts == START + 120 * DAY


def test_snapshots_are_spaced_and_bounded() -> None:
    """At most one snapshot per 30 days; past max_pending the oldest is dropped and counted."""
    maturer = LabelMaturer(NAMES, horizon_days=1000)
    kept = [day for day in range(0, 200) if maturer.snapshot(START + day * DAY, {"dpd": day})]
    assert kept == [0, 30, 60, 90, 120, 150, 180]
    assert len(maturer.pending) == 4 and maturer.dropped == 3
    assert maturer.observe(START + 200 * DAY, True) == []
    assert [e.features["dpd"] for e in maturer.observe(START + 1200 * DAY, True)] == [
        90.0,
        120.0,
        150.0,
        180.0,
    ]


def test_no_snapshot_while_a_new_customer_warms_up() -> None:
    """With ``warmup_days``, the first snapshot waits that long after the first scoring offered
    (a new customer's windows are still filling); the start survives the state encoding, and
    a cure does not start a second warm-up."""
    maturer = LabelMaturer(NAMES, warmup_days=60)
    assert not maturer.snapshot(START, {"dpd": 0.0})
    assert not maturer.snapshot(START + 59 * DAY, {"dpd": 0.0})
    restored = LabelMaturer(NAMES, warmup_days=60)
    restored.load_state(orjson.loads(orjson.dumps(maturer.to_state())))
    assert restored.first_ms == maturer.first_ms
    assert restored.snapshot(START + 60 * DAY, {"dpd": 0.0})
    restored.observe(START + 70 * DAY, bad=True)
    restored.reset_after_cure()
    assert restored.snapshot(START + 80 * DAY, {"dpd": 0.0})


def test_a_state_from_before_warm_ups_with_snapshots_counts_as_warmed() -> None:
    old = LabelMaturer(NAMES)
    old.snapshot(START, {"dpd": 0.0})
    upgraded = LabelMaturer(NAMES, warmup_days=60)
    upgraded.load_state(old.to_state())
    assert upgraded.snapshot(START + 30 * DAY, {"dpd": 0.0})


def test_default_cadence_never_drops_when_observed_first() -> None:
    """Observing before snapshotting at each scoring keeps every snapshot with the defaults."""
    maturer = LabelMaturer(NAMES)
    negatives = 0
    for day in range(0, 400):
        negatives += len(maturer.observe(START + day * DAY, bad=False))
        maturer.snapshot(START + day * DAY, {"dpd": 0.0})
        assert len(maturer.pending) <= 4
    assert maturer.dropped == 0 and negatives == 11


def test_no_snapshots_while_bad_until_reset() -> None:
    """A bad customer is not snapshotted; after reset_after_cure the next scoring is."""
    maturer = LabelMaturer(NAMES)
    maturer.snapshot(START, {})
    assert maturer.observe(START + 10 * DAY, bad=True) == []
    assert not maturer.snapshot(START + 100 * DAY, {})
    assert len(maturer.observe(START + 101 * DAY, bad=True)) == 1
    maturer.reset_after_cure()
    assert maturer.snapshot(START + 102 * DAY, {})
    assert not maturer.snapshot(START + 103 * DAY, {})


def test_label_maturer_state_is_exact_and_small() -> None:
    """State survives JSON exactly, behaves identically after, and 4 x 15 features < 550 bytes."""
    rng = random.Random(21)
    maturer = LabelMaturer(NAMES)
    for month in range(4):
        maturer.snapshot(START + month * 30 * DAY, snapshot_features(rng))
    raw = orjson.dumps(maturer.to_state())
    restored = maturer.clone()
    restored.load_state(orjson.loads(raw))
    assert orjson.dumps(restored.to_state()) == raw
    assert len(maturer.pending) == 4 and len(raw) < 550, len(raw)
    later = START + 100 * DAY
    assert restored.observe(later, True) == maturer.observe(later, True)
    assert restored.to_state() == maturer.to_state()


def test_quantised_values_are_stable() -> None:
    """Stored values round once: quantising again, or a JSON round trip, changes nothing."""
    maturer = LabelMaturer(NAMES)
    rng = random.Random(22)
    for _ in range(2000):
        v = rng.uniform(-1.0, 1.0) * 10 ** rng.randint(-8, 9)
        q = maturer.quantise(v)
        assert maturer.quantise(q) == q and orjson.loads(orjson.dumps(q)) == q
        assert abs(q - v) <= abs(v) * 5e-6


def test_state_from_another_feature_set_drops_held_snapshots() -> None:
    """A state written under other feature names is not misread: its snapshots are dropped."""
    old = LabelMaturer(NAMES[:5])
    old.snapshot(START, {"dpd": 3.0})
    new = LabelMaturer(NAMES)
    new.load_state(orjson.loads(orjson.dumps(old.to_state())))
    assert new.pending == [] and new.last_snapshot_ms == old.last_snapshot_ms


def test_labelled_example_wire_round_trip_and_hash() -> None:
    """Examples survive the training topic's JSON; the hash ignores key order and int/float."""
    maturer = LabelMaturer(NAMES)
    maturer.snapshot(START + timedelta(milliseconds=5), snapshot_features(random.Random(23)))
    (example,) = maturer.observe(START + 93 * DAY, bad=True)
    wire = orjson.loads(orjson.dumps({"customer_id": "c1", **example.to_dict()}))
    assert wire["snapshot_ts"] == "2025-01-01T00:00:00.005Z"
    back = LabelledExample.from_dict(wire)
    assert back == example and back.features_hash == wire["features_hash"]
    assert len(back.features_hash) == 16
    assert features_hash({"b": 1, "a": 2.0}) == features_hash({"a": 2, "b": 1.0})
    wire["features"]["dpd"] = 99.0
    with pytest.raises(ValueError, match="features_hash"):
        LabelledExample.from_dict(wire)


def test_labels_feed_the_trainer_deterministically() -> None:
    """Matured examples from the wire train to the same parameter bytes every time."""

    def run() -> bytes:
        rng = random.Random(24)
        model = OnlineRiskModel()
        maturers = [LabelMaturer(NAMES) for _ in range(20)]
        for day in range(0, 200, 5):
            for maturer in maturers:
                now = START + day * DAY
                for example in maturer.observe(now, bad=rng.random() < 0.01):
                    wire = orjson.loads(orjson.dumps(example.to_dict()))
                    back = LabelledExample.from_dict(wire)
                    model.learn_one(back.features, back.label)
                maturer.snapshot(now, snapshot_features(rng))
        return model.params("v").to_json()

    assert run() == run()


def test_docstring_examples_run() -> None:
    """The examples in the calibration module's docstrings are true."""
    assert doctest.testmod(detectors.calibration).failed == 0


@pytest.mark.parametrize("labels", [0, 1_000, 10_000])
def test_fast_probability_is_the_full_score_to_the_last_bit(labels: int) -> None:
    """The hot path scores without contributions; alerts recompute them. Both must give the
    same float, scorecard alone, blended, and model alone."""
    from config.rules import load_rules
    from detectors.engine import RiskDetector

    detector = RiskDetector(load_rules(), "scorecard-0")
    params = dataclasses.replace(PARAMS, n_labels=labels, n_negatives=labels)
    detector.use_model(ParamScorer(params))
    assert (detector.model_weight > 0) == (labels > 0)
    for x in probes(5):
        assert detector.probability(x) == detector.score(x).score
        assert detector.scorecard.probability(x) == detector.scorecard.score_one(x).score


def test_a_model_that_has_learned_only_positives_gets_no_weight() -> None:
    """Positives mature at once, negatives a horizon later: a young model that has learned
    500 positives and no negative must not move the score; old parameters without the count
    are weighed by their labels as before."""
    from config.rules import load_rules
    from detectors.engine import RiskDetector

    model = OnlineRiskModel()
    for x in probes(1, 500):
        model.learn_one(x, True)
    detector = RiskDetector(load_rules(), "scorecard-0")
    detector.use_model(ParamScorer(model.params("young")))
    assert model.params("young").n_negatives == 0 and detector.model_weight == 0.0
    for x in probes(2, 3_000):
        model.learn_one(x, False)
    detector.use_model(ParamScorer(model.params("older")))
    assert detector.model_weight > 0.0
    legacy = ModelParams.from_json(
        orjson.dumps({k: v for k, v in model.params("v").to_dict().items() if k != "n_negatives"})
    )
    assert legacy.n_negatives is None
    detector.use_model(ParamScorer(legacy))
    assert detector.model_weight == detector.rules.model.weight(legacy.n_labels)
    restored = OnlineRiskModel.from_state(orjson.loads(orjson.dumps(model.to_state())))
    assert restored.params("v").n_negatives == len(probes(2, 3_000))
