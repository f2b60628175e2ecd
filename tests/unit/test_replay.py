"""Replay is the live pipeline's decision sequence, whatever the batching of state writes."""

from __future__ import annotations

from config.rules import load_rules
from config.settings import Topics
from detectors.engine import RiskDetector
from streams.generator import as_recorded, generate
from streams.records import decoders
from streams.replay import replay

TOPICS = Topics()
DECODERS = decoders(TOPICS)
STREAM = generate(customers=25, days=150, seed=5, malformed=4)
MESSAGES = as_recorded(STREAM.messages, TOPICS)


def _detector() -> RiskDetector:
    return RiskDetector(load_rules(), "scorecard-0")


def test_replay_is_deterministic() -> None:
    """The same input gives the same alert ids, twice."""
    first = replay(MESSAGES, DECODERS, _detector(), partitions=3)
    second = replay(MESSAGES, DECODERS, _detector(), partitions=3)
    assert first.alerts, "the seeded input must raise alerts"
    assert [a.alert_id for a in first.alerts] == [a.alert_id for a in second.alerts]
    assert len(first.dead_letters) == 4


def test_batching_changes_no_decision() -> None:
    """State, agenda and sweep clock go through the store's encoded form between batches (as
    live batches do); one event per batch and all in one batch decide the same."""
    whole = replay(MESSAGES, DECODERS, _detector(), partitions=3, chunk=100_000)
    single = replay(MESSAGES, DECODERS, _detector(), partitions=3, chunk=1)
    assert whole.ticks > 0, "the seeded input must exercise the sweep"
    assert [a.alert_id for a in single.alerts] == [a.alert_id for a in whole.alerts]
    assert [e for _, e in single.examples] == [e for _, e in whole.examples]
    assert {k: s.encode() for k, s in single.states.items()} == {
        k: s.encode() for k, s in whole.states.items()
    }


def test_state_cache_changes_no_decision() -> None:
    """Decoded states kept between batches (evicted at random points by a tiny cache, or not
    kept at all) decide exactly as states read back from the store."""
    runs = [
        replay(MESSAGES, DECODERS, _detector(), partitions=3, chunk=50, cache_customers=size)
        for size in (0, 3, 100_000)
    ]
    first = runs[0]
    for other in runs[1:]:
        assert [a.alert_id for a in other.alerts] == [a.alert_id for a in first.alerts]
        assert [e for _, e in other.examples] == [e for _, e in first.examples]
        assert {k: s.encode() for k, s in other.states.items()} == {
            k: s.encode() for k, s in first.states.items()
        }
