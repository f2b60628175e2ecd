"""The alert state machine: score and hard floors to a level, with hysteresis; level changes to
alert kinds. Deciding is separate from scoring, as River's ``AnomalyFilter`` is."""

from __future__ import annotations

from config.rules import Rules
from detectors.alert import AlertKind, Level


class LevelPolicy:
    """Moves a customer between ``none < watch < amber < red``.

    A level is entered when the score reaches its ``enter`` threshold and kept until the score
    falls below its ``exit`` threshold, so a score inside the band never changes the level. Hard
    floors (days past due) hold the level up whatever the score says.
    """

    def __init__(self, rules: Rules) -> None:
        self.rules = rules

    def floor(self, dpd: float) -> Level:
        if dpd >= self.rules.red_dpd:
            return Level.RED
        if dpd >= self.rules.amber_dpd:
            return Level.AMBER
        return Level.NONE

    def next_level(self, current: Level, score: float, floor: Level) -> Level:
        bands = self.rules.bands
        entered = Level.NONE
        for level in (Level.WATCH, Level.AMBER, Level.RED):
            if score >= bands[level - 1].enter:
                entered = level
        held = current
        while held > Level.NONE and score < bands[held - 1].exit:
            held = Level(held - 1)
        return max(entered, held, floor)

    @staticmethod
    def kind(previous: Level, level: Level) -> AlertKind | None:
        if level == previous:
            return None
        if level > previous:
            return AlertKind.RAISED if previous is Level.NONE else AlertKind.ESCALATED
        return AlertKind.RESOLVED if level is Level.NONE else AlertKind.DOWNGRADED
