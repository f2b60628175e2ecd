"""The detector the streams call: one event in, the customer's state updated, alerts out.

Pure: no Kafka, Redis, environment or clock. Time is the event time of the customer's own
events (the largest seen so far), so a replay decides exactly as the live run did.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.rules import Rules
from detectors.alert import Alert, Level, Reason, Trigger, alert_id
from detectors.events import Event, Source
from detectors.labels import LabelledExample, features_hash
from detectors.levels import LevelPolicy
from detectors.model import ParamScorer
from detectors.scorecard import Contribution, Scorecard, Scored
from detectors.state import CustomerState, default_labels

MAX_REASONS = 4
MIN_REASON_CONTRIBUTION = 0.1


@dataclass(frozen=True, slots=True)
class Applied:
    """What one event did: ``skipped`` when it was a redelivery, else the alerts it raised and
    the labelled examples that matured (for the trainer)."""

    skipped: bool
    alerts: tuple[Alert, ...] = ()
    examples: tuple[LabelledExample, ...] = ()


class RiskDetector:
    """Applies events to customer state, scores before learning, and decides alerts."""

    def __init__(self, rules: Rules, model_version: str, model: ParamScorer | None = None) -> None:
        self.rules = rules
        self.scorecard_version = model_version
        self.scorecard = Scorecard(rules)
        self.policy = LevelPolicy(rules)
        self.model: ParamScorer | None = None
        self.model_weight = 0.0
        self.use_model(model)

    def use_model(self, model: ParamScorer | None) -> None:
        """Score with these published parameters from now on (``None``: scorecard alone)."""
        self.model = model
        self.model_weight = self.rules.model.weight(model.params.n_labels) if model else 0.0

    @property
    def model_version(self) -> str:
        """The version every alert names: the model's once it carries any weight."""
        if self.model is not None and self.model_weight > 0:
            return self.model.version
        return self.scorecard_version

    def new_state(self, customer_id: str) -> CustomerState:
        return CustomerState(customer_id=customer_id, labels=default_labels(self.rules.model))

    def decode_state(self, raw: bytes) -> CustomerState:
        return CustomerState.decode(raw, labels=default_labels(self.rules.model))

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
        scored = self.score(features)
        dpd = features.get("dpd", 0.0)
        examples = self._mature(state, features, dpd)
        floor = self.policy.floor(dpd)
        state.score = scored.score
        transition = self.policy.decide(state.alert, state.watermark_ms, scored.score, floor)
        if transition is None:
            return Applied(skipped=False, examples=examples)
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
            reasons=self.reasons(scored, floor, dpd, self._details(state)),
            trigger=Trigger(event.event_id, source.topic, source.partition, source.offset),
            event_time=event.ts,
            model_version=self.model_version,
            rules_version=self.rules.version,
            features_hash=features_hash(features),
        )
        return Applied(skipped=False, alerts=(alert,), examples=examples)

    @staticmethod
    def _details(state: CustomerState) -> dict[str, str | float]:
        details: dict[str, str | float] = {}
        for signal in state.signals:
            details.update(signal.details(state.watermark))
        return details

    def score(self, features: dict[str, float]) -> Scored:
        """The scorecard, blended with the model by the weight its label count earns."""
        card = self.scorecard.score_one(features)
        w = self.model_weight
        if self.model is None or w <= 0:
            return card
        model = self.model.score(features)
        merged: dict[str, Contribution] = {}
        for part, share in [(c, 1 - w) for c in card.contributions] + [
            (c, w) for c in model.contributions
        ]:
            known = merged.get(part.feature)
            total = share * part.contribution + (known.contribution if known else 0.0)
            merged[part.feature] = Contribution(part.feature, part.value, total)
        parts = sorted(merged.values(), key=lambda c: (-c.contribution, c.feature))
        return Scored((1 - w) * card.score + w * model.score, tuple(parts))

    def _mature(
        self, state: CustomerState, features: dict[str, float], dpd: float
    ) -> tuple[LabelledExample, ...]:
        """Keep a scoring snapshot when due; emit the labels that time or a default decides."""
        now = state.watermark
        bad = dpd >= self.rules.model.bad_dpd
        if state.labels.bad and dpd == 0:
            state.labels.reset_after_cure()
        examples = tuple(state.labels.observe(now, bad))
        if not bad:
            state.labels.snapshot(now, features)
        return examples

    def reasons(
        self,
        scored: Scored,
        floor: Level,
        dpd: float,
        details: dict[str, str | float] | None = None,
    ) -> tuple[Reason, ...]:
        """At most four: the hard floor that fired, then the largest adverse contributions.

        Texts come from the rules file and may name the feature's ``value`` and any value a
        signal's ``details()`` offers (e.g. the expected salary amount and date)."""
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
            spec = self.rules.features.get(part.feature)
            text = (
                _render(spec.text, part.value, details or {})
                if spec
                else f"{part.feature.replace('_', ' ')} at {part.value:,.2f}"
            )
            reasons.append(
                Reason(
                    code=part.feature.upper(),
                    text=text,
                    value=round(part.value, 4),
                    contribution=part.contribution,
                )
            )
        return tuple(reasons)


def _render(template: str, value: float, details: dict[str, str | float]) -> str:
    """Fill a reason template; a detail the signal cannot offer yet leaves a plain text."""
    try:
        return template.format(value=value, **details)
    except (KeyError, ValueError, IndexError):
        return template.split("{", 1)[0].strip() or f"value {value:,.2f}"
