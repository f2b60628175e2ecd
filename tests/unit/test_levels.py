"""The alert level policy: hysteresis bands, hard floors, and level changes as alert kinds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from config.rules import Band, Rules, load_rules
from detectors.alert import AlertKind, Level
from detectors.levels import LevelPolicy

PROPERTY = settings(max_examples=100, deadline=None, database=None)
LEVELS = list(Level)
SCORES = st.floats(min_value=0.0, max_value=1.0, exclude_max=True, allow_nan=False)


@st.composite
def rules(draw: st.DrawFn) -> Rules:
    """Valid rules: rising enter thresholds in (0, 1), each exit in (0, enter]."""
    enters = sorted(
        draw(
            st.lists(
                st.floats(min_value=0.01, max_value=0.99, allow_nan=False),
                min_size=3,
                max_size=3,
                unique=True,
            )
        )
    )
    bands = []
    for enter in enters:
        fraction = draw(st.floats(min_value=0.05, max_value=1.0))
        bands.append(Band(enter=enter, exit=max(enter * fraction, 1e-6)))
    amber_dpd = draw(st.integers(min_value=1, max_value=120))
    red_dpd = draw(st.integers(min_value=amber_dpd + 1, max_value=400))
    return Rules(
        version="r",
        intercept=0.0,
        features={},
        bands=(bands[0], bands[1], bands[2]),
        amber_dpd=amber_dpd,
        red_dpd=red_dpd,
    )


def _band(r: Rules, level: Level) -> tuple[float, float]:
    """[low, high): the scores for which ``level`` is held once reached."""
    low = 0.0 if level is Level.NONE else r.bands[level - 1].exit
    high = 1.0 if level is Level.RED else r.bands[level].enter
    return low, high


@PROPERTY
@given(r=rules(), level=st.sampled_from(LEVELS), position=st.floats(0.0, 1.0))
def test_score_inside_the_band_keeps_the_level(r: Rules, level: Level, position: float) -> None:
    """With exit <= score < next enter and no floor, the current level is kept."""
    low, high = _band(r, level)
    assume(low < high)
    score = min(low + position * (high - low), high - 1e-12)
    assume(low <= score < high)
    policy = LevelPolicy(r)
    assert policy.next_level(level, score, Level.NONE) is level
    assert policy.kind(level, level) is None


@PROPERTY
@given(r=rules(), current=st.sampled_from(LEVELS), score=SCORES, floor=st.sampled_from(LEVELS))
def test_level_changes_are_reported_by_direction(
    r: Rules, current: Level, score: float, floor: Level
) -> None:
    """Rising is raised (from none) or escalated; falling is downgraded or resolved (to none)."""
    policy = LevelPolicy(r)
    new = policy.next_level(current, score, floor)
    kind = policy.kind(current, new)
    if new > current:
        assert kind is (AlertKind.RAISED if current is Level.NONE else AlertKind.ESCALATED)
    elif new < current:
        assert kind is (AlertKind.RESOLVED if new is Level.NONE else AlertKind.DOWNGRADED)
    else:
        assert kind is None


@PROPERTY
@given(r=rules(), current=st.sampled_from(LEVELS), score=SCORES, floor=st.sampled_from(LEVELS))
def test_floors_override_low_scores(r: Rules, current: Level, score: float, floor: Level) -> None:
    """Whatever the score and current level, the result is never below the floor."""
    assert LevelPolicy(r).next_level(current, score, floor) >= floor


@PROPERTY
@given(r=rules(), current=st.sampled_from(LEVELS), score=SCORES)
def test_reaching_an_enter_threshold_enters_the_level(
    r: Rules, current: Level, score: float
) -> None:
    """A score at or above a level's enter threshold yields at least that level."""
    new = LevelPolicy(r).next_level(current, score, Level.NONE)
    for level in (Level.WATCH, Level.AMBER, Level.RED):
        if score >= r.bands[level - 1].enter:
            assert new >= level


@PROPERTY
@given(
    r=rules(),
    current=st.sampled_from(LEVELS[1:]),
    position=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_falling_below_exit_leaves_the_level(r: Rules, current: Level, position: float) -> None:
    """Without a floor, a score below the current level's exit never keeps that level."""
    score = r.bands[current - 1].exit * position
    assume(score < r.bands[current - 1].exit)
    assert LevelPolicy(r).next_level(current, score, Level.NONE) < current


@PROPERTY
@given(r=rules(), dpd=st.integers(min_value=0, max_value=1000))
def test_floor_from_days_past_due(r: Rules, dpd: int) -> None:
    """The DPD floor is red from red_dpd, amber from amber_dpd, none below."""
    expected = Level.RED if dpd >= r.red_dpd else Level.AMBER if dpd >= r.amber_dpd else Level.NONE
    assert LevelPolicy(r).floor(float(dpd)) is expected


@pytest.mark.parametrize(
    ("current", "score", "expected"),
    [
        (Level.NONE, 0.19, Level.NONE),
        (Level.NONE, 0.20, Level.WATCH),
        (Level.WATCH, 0.16, Level.WATCH),
        (Level.WATCH, 0.149, Level.NONE),
        (Level.AMBER, 0.40, Level.AMBER),
        (Level.AMBER, 0.30, Level.WATCH),
        (Level.RED, 0.70, Level.RED),
        (Level.RED, 0.10, Level.NONE),
        (Level.NONE, 0.80, Level.RED),
    ],
)
def test_default_bands(current: Level, score: float, expected: Level) -> None:
    """The packaged bands: enter at 0.20/0.45/0.75, leave below 0.15/0.38/0.68."""
    assert LevelPolicy(load_rules()).next_level(current, score, Level.NONE) is expected


@pytest.mark.parametrize(
    ("previous", "level", "kind"),
    [
        (Level.NONE, Level.WATCH, AlertKind.RAISED),
        (Level.NONE, Level.RED, AlertKind.RAISED),
        (Level.WATCH, Level.AMBER, AlertKind.ESCALATED),
        (Level.RED, Level.AMBER, AlertKind.DOWNGRADED),
        (Level.AMBER, Level.NONE, AlertKind.RESOLVED),
        (Level.AMBER, Level.AMBER, None),
    ],
)
def test_kind_table(previous: Level, level: Level, kind: Any) -> None:
    """Each level transition maps to its alert kind."""
    assert LevelPolicy.kind(previous, level) is kind
