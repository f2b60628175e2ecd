"""Replay is the live pipeline's decision sequence, whatever the batching of state writes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from config.settings import Topics
from detectors.engine import RiskDetector
from streams.records import decoders
from streams.replay import Learner, ReplayOrderError, read_recording, replay
from streams.simulator import as_recorded, generate, to_jsonl
from tests.support import rules_without_warmup

TOPICS = Topics()
DECODERS = decoders(TOPICS)
STREAM = generate(customers=25, days=150, seed=5, malformed=4)
MESSAGES = as_recorded(STREAM.messages, TOPICS)


def _detector() -> RiskDetector:
    return RiskDetector(rules_without_warmup(), "scorecard-0")


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


def test_reading_in_windows_changes_no_decision() -> None:
    """A recording in event-time order replays the same in windows of 1,000 messages as whole
    (the same alerts; their order across partitions is the window's, as live it is the fetch's)."""
    whole = replay(MESSAGES, DECODERS, _detector(), partitions=3)
    windowed = replay(MESSAGES, DECODERS, _detector(), partitions=3, window=1_000)
    assert len(MESSAGES) > 3_000
    assert sorted(a.alert_id for a in windowed.alerts) == sorted(a.alert_id for a in whole.alerts)
    assert {k: s.encode() for k, s in windowed.states.items()} == {
        k: s.encode() for k, s in whole.states.items()
    }


def test_out_of_order_across_windows_is_refused() -> None:
    """An event that would have to go before one already applied stops the replay, loudly."""
    shuffled = MESSAGES[2_000:] + MESSAGES[:2_000]
    with pytest.raises(ReplayOrderError, match="event-time order"):
        replay(shuffled, DECODERS, _detector(), partitions=3, window=1_000)


def test_learning_replay_is_deterministic_and_publishes() -> None:
    """With a learner the model reaches the detector at fixed points: same input, same alerts."""
    runs = []
    for _ in range(2):
        detector = _detector()
        learner = Learner(detector, publish_every=20)
        result = replay(MESSAGES, DECODERS, detector, partitions=3, learner=learner)
        runs.append((result, learner, detector))
    (first, learner, detector), (second, _, _) = runs
    assert learner.model.n_labels == len(first.examples) >= 40
    assert detector.model is not None and detector.model.version.startswith("lr-")
    assert [s.probability for s in learner.scored] == [s.probability for s in runs[1][1].scored]
    assert [a.alert_id for a in first.alerts] == [a.alert_id for a in second.alerts]


def test_a_recording_file_reads_back_as_the_messages(tmp_path: Path) -> None:
    """``to_jsonl`` then ``read_recording`` gives the same topic, key and bytes, in order."""
    path = tmp_path / "rec.jsonl"
    to_jsonl(STREAM.messages, path)
    assert list(read_recording(path, TOPICS)) == MESSAGES


def test_a_learning_replay_never_scores_with_labels_from_the_future() -> None:
    """Every alert scored by model version lr-N comes at or after the event time at which the
    N-th label matured, across partitions and windows: a backtest has no look-ahead."""
    rules = rules_without_warmup()
    eager = dataclasses.replace(rules.model, min_labels=5, full_weight_labels=20)
    detector = RiskDetector(dataclasses.replace(rules, model=eager), "scorecard-0")
    learner = Learner(detector, publish_every=5)
    result = replay(MESSAGES, DECODERS, detector, partitions=3, window=2_000, learner=learner)
    scored = [a for a in result.alerts if a.model_version.startswith("lr-")]
    assert scored, "the seeded input must publish a model that scores alerts"
    for alert in scored:
        learned = int(alert.model_version.removeprefix("lr-"))
        assert learner.scored[learned - 1].matured_ts <= alert.event_time
