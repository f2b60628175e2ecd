"""The alert state machine: hysteresis, persistence, cooldown, snooze and hard floors."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.rules import load_rules
from detectors.alert import AlertKind, Level
from detectors.levels import DAY_MS, AlertState, LevelPolicy, Transition, kind

RULES = load_rules()
POLICY = LevelPolicy(RULES)
BANDS = RULES.bands

steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=5 * DAY_MS),  # time since the previous step
        st.floats(min_value=0.0, max_value=1.0, allow_nan=False),  # score
        st.sampled_from([0.0, 0.0, 0.0, 35.0, 95.0]),  # dpd
    ),
    max_size=60,
)


def run(
    policy: LevelPolicy, script: list[tuple[int, float, float]], state: AlertState | None = None
) -> tuple[AlertState, list[Transition]]:
    state = state or AlertState()
    now, out = 0, []
    for gap, score, dpd in script:
        now += gap
        transition = policy.decide(state, now, score, policy.floor(dpd))
        if transition is not None:
            out.append(transition)
    return state, out


@pytest.mark.parametrize(
    ("level", "score"),
    [
        (Level.WATCH, BANDS[0].exit),
        (Level.WATCH, (BANDS[0].exit + BANDS[1].enter) / 2),
        (Level.AMBER, BANDS[1].exit),
        (Level.RED, BANDS[2].exit),
    ],
)
def test_score_inside_the_band_never_changes_the_level(level: Level, score: float) -> None:
    """Between a level's exit and the next level's enter, nothing changes, however long."""
    state = AlertState(level=level, notified=level)
    script = [(DAY_MS, score, 0.0)] * 60
    state, transitions = run(POLICY, script, state)
    assert state.level is level and transitions == []


@settings(max_examples=150, deadline=None, database=None)
@given(level=st.sampled_from([Level.WATCH, Level.AMBER, Level.RED]), data=st.data())
def test_hysteresis_band_property(level: Level, data: st.DataObject) -> None:
    """Property: any score sequence inside the band keeps the level and sends nothing."""
    upper = BANDS[level].enter if level < Level.RED else 1.0
    scores = data.draw(
        st.lists(
            st.floats(min_value=BANDS[level - 1].exit, max_value=upper, exclude_max=True),
            max_size=40,
        )
    )
    state = AlertState(level=level, notified=level)
    state, transitions = run(POLICY, [(DAY_MS, s, 0.0) for s in scores], state)
    assert state.level is level and transitions == []


@settings(max_examples=200, deadline=None, database=None)
@given(script=steps)
def test_rises_are_raised_or_escalated_and_transitions_chain(
    script: list[tuple[int, float, float]],
) -> None:
    """Property: a rise is raised (from none) or escalated; each starts where the last ended."""
    _, transitions = run(POLICY, script)
    previous = Level.NONE
    for t in transitions:
        assert t.previous is previous and t.level is not previous
        if t.level > t.previous:
            expected = AlertKind.RAISED if t.previous is Level.NONE else AlertKind.ESCALATED
        else:
            expected = AlertKind.RESOLVED if t.level is Level.NONE else AlertKind.DOWNGRADED
        assert t.kind is expected
        previous = t.level


@settings(max_examples=100, deadline=None, database=None)
@given(script=steps)
def test_same_input_same_alerts(script: list[tuple[int, float, float]]) -> None:
    """Property: the state machine is deterministic, and its state round-trips exactly."""
    first_state, first = run(POLICY, script)
    second_state, second = run(POLICY, script)
    assert first == second and first_state == second_state
    assert AlertState.from_state(first_state.to_state()) == first_state


def test_a_dip_below_exit_shorter_than_resolve_after_changes_nothing() -> None:
    """Amber survives a 10-day dip; it is downgraded only after 14 days below exit."""
    state = AlertState()
    POLICY.decide(state, 0, 0.5, Level.NONE)
    assert state.level is Level.AMBER
    for day in range(1, 11):
        assert POLICY.decide(state, day * DAY_MS, 0.30, Level.NONE) is None
    POLICY.decide(state, 11 * DAY_MS, 0.40, Level.NONE)  # back in the band: the clock resets
    for day in range(12, 12 + RULES.resolve_after_days):
        assert POLICY.decide(state, day * DAY_MS, 0.30, Level.NONE) is None
    t = POLICY.decide(state, (12 + RULES.resolve_after_days) * DAY_MS, 0.30, Level.NONE)
    assert t == Transition(AlertKind.DOWNGRADED, Level.AMBER, Level.WATCH)


def test_floors_override_low_scores() -> None:
    """30+ days past due is at least amber and 90+ red, whatever the score."""
    state = AlertState()
    assert POLICY.decide(state, 0, 0.0, POLICY.floor(30)) == Transition(
        AlertKind.RAISED, Level.NONE, Level.AMBER
    )
    assert POLICY.decide(state, DAY_MS, 0.0, POLICY.floor(90)) == Transition(
        AlertKind.ESCALATED, Level.AMBER, Level.RED
    )
    for day in range(2, 60):
        assert POLICY.decide(state, day * DAY_MS, 0.0, POLICY.floor(95)) is None
    assert state.level is Level.RED


def test_cooldown_suppresses_re_notifying_a_level() -> None:
    """A level notified within the cooldown is not notified again; later ones chain from it."""
    rules = dataclasses.replace(RULES, resolve_after_days=0, cooldown_days=7)
    policy = LevelPolicy(rules)
    state = AlertState()
    assert policy.decide(state, 0, 0.5, Level.NONE) is not None  # amber
    assert policy.decide(state, DAY_MS, 0.30, Level.NONE) is not None  # downgraded to watch
    assert policy.decide(state, 2 * DAY_MS, 0.5, Level.NONE) is None  # amber again: cooled down
    assert state.level is Level.AMBER and state.notified is Level.WATCH
    t = policy.decide(state, 3 * DAY_MS, 0.8, Level.NONE)
    assert t == Transition(AlertKind.ESCALATED, Level.WATCH, Level.RED)


def test_snooze_mutes_all_but_the_red_floor() -> None:
    """While snoozed the level is tracked silently; the 90+ DPD floor still notifies."""
    state = AlertState(snooze_until_ms=30 * DAY_MS)
    assert POLICY.decide(state, DAY_MS, 0.5, Level.NONE) is None
    assert state.level is Level.AMBER and state.notified is Level.NONE
    t = POLICY.decide(state, 2 * DAY_MS, 0.0, POLICY.floor(90))
    assert t == Transition(AlertKind.RAISED, Level.NONE, Level.RED)
    after = AlertState(snooze_until_ms=10 * DAY_MS)
    POLICY.decide(after, DAY_MS, 0.5, Level.NONE)
    assert POLICY.decide(after, 11 * DAY_MS, 0.5, Level.NONE) == Transition(
        AlertKind.RAISED, Level.NONE, Level.AMBER
    )


@pytest.mark.parametrize(
    ("previous", "level", "expected"),
    [
        (Level.NONE, Level.WATCH, AlertKind.RAISED),
        (Level.NONE, Level.RED, AlertKind.RAISED),
        (Level.WATCH, Level.AMBER, AlertKind.ESCALATED),
        (Level.RED, Level.AMBER, AlertKind.DOWNGRADED),
        (Level.AMBER, Level.NONE, AlertKind.RESOLVED),
    ],
)
def test_kind_table(previous: Level, level: Level, expected: AlertKind) -> None:
    """Each level change has one kind."""
    assert kind(previous, level) is expected
