"""Outcomes declared by the bank (``ews.outcomes``): decoded, merged first and labelling at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from config.settings import Topics
from detectors.engine import RiskDetector
from detectors.events import Outcome, OutcomeKind
from streams.merge import merge_key
from streams.records import DecodeError, ErrorCode, decode, decode_repayment, decoders
from streams.replay import Recorded, replay
from tests.support import rules_without_warmup
from tests.unit.test_sweep import payment, spend

TOPICS = Topics()
DECODERS = decoders(TOPICS)
START = datetime(2025, 1, 1, tzinfo=UTC)


def outcome(customer: str, ts: datetime, kind: str, n: int = 1) -> Recorded:
    body = {
        "schema_version": 1,
        "event_id": f"oc-{customer}-{n}",
        "customer_id": customer,
        "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "outcome": kind,
    }
    return Recorded(TOPICS.outcomes, customer.encode(), orjson.dumps(body))


def monthly_spends(customer: str, months: int) -> list[Recorded]:
    return [spend(customer, START + timedelta(days=30 * m, hours=12)) for m in range(months)]


def test_outcome_decodes_and_names_a_bad_value() -> None:
    """A valid outcome decodes; an unknown outcome is a dead letter naming the field."""
    good = outcome("c1", START, "written_off")
    event = decode(DECODERS[TOPICS.outcomes], good.value, good.key, 4096)
    assert event == Outcome("oc-c1-1", "c1", START, OutcomeKind.WRITTEN_OFF)
    bad = outcome("c1", START, "bankrupt")
    with pytest.raises(DecodeError) as err:
        decode(DECODERS[TOPICS.outcomes], bad.value, bad.key, 4096)
    assert err.value.code is ErrorCode.BAD_ENUM and "outcome" in err.value.message


def test_outcome_sorts_before_a_repayment_at_the_same_instant() -> None:
    """Ties in event time go outcome, repayment, transaction (DESIGN.md, the merge order)."""
    declared = Outcome("z", "c1", START, OutcomeKind.DEFAULT)
    due = decode_repayment(
        {
            "event_id": "a",
            "customer_id": "c1",
            "loan_id": "l",
            "ts": "2025-01-01T00:00:00Z",
            "type": "due",
            "instalment_no": 1,
            "due_date": "2025-01-01",
            "amount_due": "1.00",
            "amount_paid": "0",
        }
    )
    assert merge_key(declared) < merge_key(due)


def _labels(messages: list[Recorded]) -> list[tuple[float, bool]]:
    result = replay(messages, DECODERS, RiskDetector(rules_without_warmup(), "scorecard-0"), 1)
    return [(example.delay_days, example.label) for _, example in result.examples]


def test_a_declared_default_makes_held_snapshots_positives() -> None:
    """Without an outcome, the snapshots of a quiet customer mature negative; with a declared
    default (and no days past due at all) every held one matures positive at its horizon."""
    spends = monthly_spends("c1", 3)  # snapshots at days 0, 30, 60
    declared_at = START + timedelta(days=75, hours=12)
    after = spend("c1", START + timedelta(days=200))
    assert [label for _, label in _labels([*spends, after])] == [False, False, False]
    labels = _labels([*spends, outcome("c1", declared_at, "default"), after])
    assert [label for _, label in labels] == [True, True, True]
    assert [round(delay) for delay, _ in labels] == [90, 90, 90]


def test_after_closed_days_past_due_no_longer_make_a_label_bad() -> None:
    """An unpaid instalment makes a quiet customer's held snapshots positive once it is 30 days
    overdue. Once the bank has closed the account, the schedule no longer speaks: they mature
    negative, unless the bank declares a default within their horizon."""
    spends = monthly_spends("c1", 3)  # snapshots at days 0, 30, 60
    unpaid = payment("c1", 1, (START + timedelta(days=40)).date(), "0.00")
    closed = outcome("c1", START + timedelta(days=65), "closed")
    declared = outcome("c1", START + timedelta(days=100), "default", 2)
    after = spend("c1", START + timedelta(days=200))
    assert [label for _, label in _labels([*spends, unpaid, after])] == [True, True, True]
    assert [label for _, label in _labels([*spends, unpaid, closed, after])] == [False] * 3
    labels = _labels([*spends, unpaid, closed, declared, after])
    assert [label for _, label in labels] == [False, True, True]  # day 0's horizon ends at 90


def test_a_cure_lifts_a_declared_default_and_snapshots_resume() -> None:
    """After ``cured`` snapshots resume; after ``closed`` no new snapshot is kept."""
    detector = RiskDetector(rules_without_warmup(), "scorecard-0")
    cured = [
        *monthly_spends("c1", 1),
        outcome("c1", START + timedelta(days=5), "default", 1),
        outcome("c1", START + timedelta(days=10), "cured", 2),
        spend("c1", START + timedelta(days=20)),
    ]
    state = replay(cured, DECODERS, detector, 1).states["c1"]
    assert state.declared is OutcomeKind.CURED
    held = [ts for ts, _ in state.labels.pending]
    assert len(held) == 2 and state.labels.positive == {held[0]}  # day 0 positive, day 20 new
    closed = [outcome("c2", START, "closed"), *monthly_spends("c2", 2)]
    state = replay(closed, DECODERS, detector, 1).states["c2"]
    assert state.declared is OutcomeKind.CLOSED and state.labels.pending == []


def test_the_declared_outcome_survives_the_state_encoding() -> None:
    """The changelog keeps the declared outcome: a restarted worker still knows the default."""
    detector = RiskDetector(rules_without_warmup(), "scorecard-0")
    result = replay([outcome("c1", START, "restructured")], DECODERS, detector, 1)
    state = result.states["c1"]
    assert detector.decode_state(state.encode()).declared is OutcomeKind.RESTRUCTURED
