"""The detector the streams call: one event in, the customer's state updated, alerts out.

Pure: no Kafka, Redis, environment or clock. Time is the event time of the customer's own
events (the largest seen so far), so a replay decides exactly as the live run did.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.rules import Rules
from detectors.alert import Alert, Level, Reason, Trigger, alert_id
from detectors.events import Event, Source
from detectors.levels import LevelPolicy
from detectors.scorecard import Scorecard, Scored
from detectors.state import CustomerState

MAX_REASONS = 4
MIN_REASON_CONTRIBUTION = 0.1


@dataclass(frozen=True, slots=True)
class Applied:
    """What one event did: ``skipped`` when it was a redelivery, else the alerts it raised."""

    skipped: bool
    alerts: tuple[Alert, ...] = ()


class RiskDetector:
    """Applies events to customer state, scores before learning, and decides alerts."""

    def __init__(self, rules: Rules, model_version: str) -> None:
        self.rules = rules
        self.model_version = model_version
        self.scorecard = Scorecard(rules)
        self.policy = LevelPolicy(rules)

    def new_state(self, customer_id: str) -> CustomerState:
        return CustomerState(customer_id=customer_id)

    def apply(self, state: CustomerState, event: Event, source: Source) -> Applied:
        """Fold ``event`` into ``state`` (in place) and return the alerts it triggers."""
        last = state.offsets.get(source.topic)
        if last is not None and source.offset <= last:
            return Applied(skipped=True)
        state.offsets[source.topic] = source.offset
        event_ms = int(event.ts.timestamp() * 1000)
        if event_ms < state.watermark_ms:
            state.late_events += 1
        state.watermark_ms = max(state.watermark_ms, event_ms)
        state.events += 1
        for signal in state.signals:
            signal.learn_one(event)

        now = state.watermark
        features: dict[str, float] = {}
        for signal in state.signals:
            features.update(signal.score_one(now))
        scored = self.scorecard.score_one(features)
        floor = self.policy.floor(features.get("dpd", 0.0))
        state.score = scored.score
        transition = self.policy.decide(state.alert, state.watermark_ms, scored.score, floor)
        if transition is None:
            return Applied(skipped=False)
        alert = Alert(
            alert_id=alert_id(
                state.customer_id,
                transition.kind,
                transition.level,
                event.event_id,
                self.rules.version,
                self.model_version,
            ),
            customer_id=state.customer_id,
            kind=transition.kind,
            level=transition.level,
            previous_level=transition.previous,
            score=scored.score,
            reasons=self.reasons(scored, floor, features.get("dpd", 0.0)),
            trigger=Trigger(event.event_id, source.topic, source.partition, source.offset),
            event_time=event.ts,
            model_version=self.model_version,
            rules_version=self.rules.version,
        )
        return Applied(skipped=False, alerts=(alert,))

    def reasons(self, scored: Scored, floor: Level, dpd: float) -> tuple[Reason, ...]:
        """At most four: the hard floor that fired, then the largest adverse contributions."""
        reasons: list[Reason] = []
        if floor is not Level.NONE:
            threshold = self.rules.red_dpd if floor is Level.RED else self.rules.amber_dpd
            reasons.append(
                Reason(
                    code=f"DPD_{threshold}_PLUS",
                    text=f"{dpd:.0f} days past due: at least {floor.label} by rule",
                    value=dpd,
                    contribution=0.0,
                )
            )
        for part in scored.contributions:
            if len(reasons) >= MAX_REASONS or part.contribution < MIN_REASON_CONTRIBUTION:
                break
            spec = self.rules.features[part.feature]
            reasons.append(
                Reason(
                    code=part.feature.upper(),
                    text=spec.text.format(value=part.value),
                    value=round(part.value, 4),
                    contribution=part.contribution,
                )
            )
        return tuple(reasons)
