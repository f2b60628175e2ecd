"""Prequential check of the online model on labels matured in an offline replay.

``.venv/bin/python -m tests.benchmarks.calibration [SEED]``: replays the generator's stream (300
customers, 240 days), orders the matured examples by maturity, scores each with the online model
before it learns it, and prints ROC AUC, Brier score and expected calibration error, raw and
Platt-calibrated, over the second half (once the model has warmed up). Not part of ``make test``.
"""

from __future__ import annotations

import sys

from config.rules import load_rules
from config.settings import Topics
from detectors.calibration import brier, expected_calibration_error, roc_auc
from detectors.engine import RiskDetector
from detectors.model import OnlineRiskModel
from streams.records import decoders
from streams.replay import replay
from streams.simulator import as_recorded, generate


def main(seed: int) -> None:
    topics = Topics()
    stream = generate(customers=300, days=240, seed=seed, malformed=0)
    detector = RiskDetector(load_rules(), "scorecard-0")
    result = replay(as_recorded(stream.messages, topics), decoders(topics), detector, 4)
    examples = sorted((e for _, e in result.examples), key=lambda e: (e.matured_ts, e.snapshot_ts))
    model = OnlineRiskModel()
    calibrated, raw, labels = [], [], []
    for example in examples:
        calibrated.append(model.predict_proba(example.features))
        raw.append(model.predict_proba(example.features, calibrated=False))
        labels.append(example.label)
        model.learn_one(example.features, example.label)
    half = len(labels) // 2
    cal, unc, ys = calibrated[half:], raw[half:], labels[half:]
    print(f"seed {seed}: {len(labels)} matured labels, {sum(labels)} positive")
    print(f"  second half: n={len(ys)}, ROC AUC {roc_auc(cal, ys):.3f}")
    print(f"  Brier raw {brier(unc, ys):.4f}, calibrated {brier(cal, ys):.4f}")
    print(
        f"  ECE   raw {expected_calibration_error(unc, ys):.4f}, "
        f"calibrated {expected_calibration_error(cal, ys):.4f}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
