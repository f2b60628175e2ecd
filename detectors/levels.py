"""The alert state machine: score and hard floors to a level; level changes to notifications.

Deciding is separate from scoring, as River's ``AnomalyFilter`` is. All times are event time in
epoch milliseconds, passed in by the caller.

- A level is **entered** when the score reaches its ``enter`` threshold (or a hard floor demands
  it) and the notification goes out at once (``raised`` from none, else ``escalated``).
- A level is **left** only after the score has stayed below its ``exit`` threshold for
  ``resolve_after_days`` (and no floor holds it), so a score inside the band, or a dip, never
  changes it (``downgraded``, or ``resolved`` down to none).
- **Cooldown**: a level notified within ``cooldown_days`` is not notified again; the level is
  still tracked and later notifications start from the last level notified.
- **Snooze** mutes notifications until a given time, except when the red hard floor (90+ days
  past due by default) holds the customer. A snooze of one reason code mutes only the
  notifications whose leading reason has that code.
- **Escalation clock**: ``sla`` holds the last rising amber or red alert that no feedback has
  answered yet, with its deadline; the detector raises the SLA breach (see ``detectors.engine``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from config.rules import Rules
from detectors.alert import AlertKind, Level

DAY_MS = 86_400_000
NEVER = -1


@dataclass(frozen=True, slots=True)
class Clock:
    """An escalation clock: the alert, its level, and when its SLA runs out (epoch ms)."""

    alert_id: str
    level: Level
    due_ms: int


@dataclass(slots=True)
class AlertState:
    """One customer's position in the state machine; compact and exactly serialisable."""

    level: Level = Level.NONE
    notified: Level = Level.NONE
    below_since_ms: int | None = None
    notified_at_ms: list[int] = field(default_factory=lambda: [NEVER] * 4)  # per level
    snooze_until_ms: int = 0
    snooze_code: str | None = None  # a snooze of one reason code only
    sla: Clock | None = None  # the unanswered rising alert whose escalation clock runs

    def to_state(self) -> list[object]:
        state: list[object] = [
            int(self.level),
            int(self.notified),
            self.below_since_ms,
            self.notified_at_ms,
            self.snooze_until_ms,
        ]
        if self.snooze_code is not None or self.sla is not None:
            sla = self.sla
            clock = None if sla is None else [sla.alert_id, int(sla.level), sla.due_ms]
            state += [self.snooze_code, clock]
        return state

    @classmethod
    def from_state(cls, data: list[object]) -> AlertState:
        level, notified, below, notified_at, snooze = data[:5]
        code, sla = data[5:] if len(data) == 7 else (None, None)
        assert isinstance(level, int) and isinstance(notified, int)
        assert isinstance(notified_at, list) and isinstance(snooze, int)
        assert below is None or isinstance(below, int)
        assert code is None or isinstance(code, str)
        clock = None
        if sla is not None:
            assert isinstance(sla, list)
            clock = Clock(str(sla[0]), Level(int(sla[1])), int(sla[2]))
        return cls(
            Level(level), Level(notified), below, [int(t) for t in notified_at], snooze, code, clock
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """A notification to send: from the last level notified to the new level."""

    kind: AlertKind
    previous: Level
    level: Level


class LevelPolicy:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.resolve_after_ms = rules.resolve_after_days * DAY_MS
        self.cooldown_ms = rules.cooldown_days * DAY_MS
        self._enter = tuple(zip((Level.WATCH, Level.AMBER, Level.RED), rules.bands, strict=True))

    def floor(self, dpd: float) -> Level:
        if dpd >= self.rules.red_dpd:
            return Level.RED
        if dpd >= self.rules.amber_dpd:
            return Level.AMBER
        return Level.NONE

    def entered(self, score: float) -> Level:
        """The highest level whose enter threshold the score reaches."""
        level = Level.NONE
        for candidate, band in self._enter:
            if score >= band.enter:
                level = candidate
        return level

    def held(self, current: Level, score: float) -> Level:
        """The level the exit thresholds still allow, starting from ``current``."""
        level = current
        while level > Level.NONE and score < self.rules.bands[level - 1].exit:
            level = Level(level - 1)
        return level

    def decide(
        self,
        state: AlertState,
        now_ms: int,
        score: float,
        floor: Level,
        leading_reason: Callable[[], str | None] = lambda: None,
    ) -> Transition | None:
        """Move ``state`` (in place) and return the notification to send, if any.
        ``leading_reason`` names the code the notification would lead with (asked only when a
        snooze of one reason code is in force)."""
        rising = max(self.entered(score), floor)
        if rising > state.level:
            state.level = rising
            state.below_since_ms = None
        else:
            allowed = max(self.held(state.level, score), rising)
            if allowed < state.level:
                if state.below_since_ms is None:
                    state.below_since_ms = now_ms
                if now_ms - state.below_since_ms >= self.resolve_after_ms:
                    state.level = allowed
                    state.below_since_ms = None
            else:
                state.below_since_ms = None
        return self._notify(state, now_ms, floor, leading_reason)

    def _notify(
        self,
        state: AlertState,
        now_ms: int,
        floor: Level,
        leading_reason: Callable[[], str | None],
    ) -> Transition | None:
        level = state.level
        if level == state.notified:
            return None
        hard_red = floor is Level.RED and level is Level.RED
        snoozed = now_ms < state.snooze_until_ms and not hard_red
        if snoozed and (state.snooze_code is None or state.snooze_code == leading_reason()):
            return None
        last = state.notified_at_ms[level]
        if last != NEVER and now_ms - last < self.cooldown_ms and not hard_red:
            return None
        transition = Transition(kind(state.notified, level), state.notified, level)
        state.notified = level
        state.notified_at_ms[level] = now_ms
        return transition


def kind(previous: Level, level: Level) -> AlertKind:
    if level > previous:
        return AlertKind.RAISED if previous is Level.NONE else AlertKind.ESCALATED
    return AlertKind.RESOLVED if level is Level.NONE else AlertKind.DOWNGRADED
