"""Labels in arrears: while 30 to 89 days past due, a customer's snapshots ask whether they reach
90 days past due (or a declared default) within the horizon."""

from __future__ import annotations

from datetime import date, timedelta

import orjson

from config.rules import load_rules
from detectors.engine import MAX_HELD, RiskDetector
from detectors.events import Source
from detectors.labels import LabelledExample
from streams.records import decode
from streams.replay import replay
from tests.support import rules_without_warmup
from tests.unit.test_sweep import DECODERS, START, payment, spend

MISSED = date(2025, 1, 10)


def _examples(customer: str, paid_on: date | None) -> list[LabelledExample]:
    """A customer who spends daily for 240 days and misses the instalment due on ``MISSED``,
    paying it on ``paid_on`` if given."""
    messages = [payment(customer, 1, MISSED, "0.00")]
    if paid_on is not None:
        messages.append(payment(customer, 1, paid_on, "500.00", kind="payment"))
    messages += [spend(customer, START + timedelta(days=d, hours=12)) for d in range(240)]
    result = replay(messages, DECODERS, RiskDetector(rules_without_warmup(), "scorecard-0"), 1)
    return sorted((e for _, e in result.examples), key=lambda e: e.snapshot_ts)


def test_snapshots_in_arrears_are_positives_when_the_customer_reaches_90_days() -> None:
    """Snapshots before arrears are positives (30+ days came within the horizon); snapshots at
    30 to 89 days past due are positives too, since 90 days came within theirs."""
    examples = _examples("debtor", paid_on=None)
    before = [e for e in examples if e.features["dpd"] < 30]
    arrears = [e for e in examples if e.features["dpd"] >= 30]
    assert before and all(e.label for e in before)
    assert arrears and all(30 <= e.features["dpd"] < 90 and e.label for e in arrears)
    assert all(e.features["dpd"] < 90 for e in examples)  # none kept at 90+ days


def test_the_packaged_warm_up_holds_snapshots_in_arrears_too() -> None:
    """With the packaged rules a customer's first snapshot, in arrears or not, comes 90 days
    after their first scoring. The debtor is 30 days past due from day 39, inside the warm-up."""
    messages = [payment("late", 1, MISSED, "0.00")]
    messages += [spend("late", START + timedelta(days=d, hours=12)) for d in range(240)]
    result = replay(messages, DECODERS, RiskDetector(load_rules(), "scorecard-0"), 1)
    snapshots = sorted(e.snapshot_ts for _, e in result.examples)
    assert load_rules().model.warmup_days == 90
    assert snapshots and snapshots[0] >= START + timedelta(days=90, hours=12)
    early = _examples("early", paid_on=None)  # the same debtor without a warm-up
    assert early[0].snapshot_ts < START + timedelta(days=90)


def test_snapshots_in_arrears_are_negatives_when_the_customer_pays() -> None:
    """Paid 40 days late: the arrears snapshot matures negative, the earlier ones positive, and
    snapshots before arrears resume after the cure (negatives)."""
    examples = _examples("payer", paid_on=MISSED + timedelta(days=40))
    arrears = [e for e in examples if e.features["dpd"] >= 30]
    assert len(arrears) == 1 and not arrears[0].label
    cured = [e for e in examples if e.snapshot_ts > arrears[0].snapshot_ts]
    assert cured and not any(e.label for e in cured)
    first = [e for e in examples if e.snapshot_ts < arrears[0].snapshot_ts]
    assert first and all(e.label for e in first)


def test_at_most_max_held_snapshots_are_held_in_all() -> None:
    """Before, in and after arrears, the state never holds more than ``MAX_HELD`` snapshots."""
    detector = RiskDetector(rules_without_warmup(), "scorecard-0")
    state = detector.new_state("c1")
    paid = MISSED + timedelta(days=50)
    messages = [payment("c1", 1, MISSED, "0.00"), payment("c1", 1, paid, "500.00", "payment")]
    messages += [spend("c1", START + timedelta(days=d, hours=12)) for d in range(240)]
    messages.sort(key=lambda m: orjson.loads(m.value)["ts"])
    held = []
    for offset, message in enumerate(messages):
        event = decode(DECODERS[message.topic], message.value, message.key, 4096)
        detector.apply(state, event, Source(message.topic, 0, offset))
        held.append(len(state.labels.pending) + len(state.arrears.pending))
    assert state.arrears.pending == [] and max(held) == MAX_HELD
