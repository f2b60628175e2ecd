"""The detector the streams call: one event in, the customer's state updated, alerts out.

Pure: no Kafka, Redis, environment or clock. Time is the event time of the customer's own
events (the largest seen so far), or, for a customer who sends nothing, the time the caller's
event-time sweep passes in (:meth:`RiskDetector.tick`, at the :meth:`RiskDetector.wake_at` the
state asked for), so a replay decides exactly as the live run did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from config.rules import Rules
from detectors.alert import Alert, Level, Reason, Trigger, alert_id
from detectors.events import BAD_OUTCOMES, Event, Outcome, OutcomeKind, Source
from detectors.labels import LabelledExample, features_hash
from detectors.levels import DAY_MS, LevelPolicy
from detectors.model import ParamScorer
from detectors.scorecard import Contribution, Scorecard, Scored
from detectors.state import CustomerState, default_labels

MAX_REASONS = 4
MIN_REASON_CONTRIBUTION = 0.1


@dataclass(frozen=True, slots=True)
class Applied:
    """What one event did: ``skipped`` when it was a redelivery, else the alerts it raised and
    the labelled examples that matured (for the trainer); ``expired`` when a sweep found the
    customer idle past the TTL and the state may be forgotten."""

    skipped: bool
    alerts: tuple[Alert, ...] = ()
    examples: tuple[LabelledExample, ...] = ()
    expired: bool = False


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
        """Score with these published parameters from now on (``None``: scorecard alone).

        The model's weight grows with the *negative* labels it has learned: a positive matures
        as soon as the customer goes bad, a negative only a horizon after its snapshot, so for
        its first horizon a young model has learned almost nothing but positives and would
        score everyone as bad."""
        self.model = model
        if model is None:
            self.model_weight = 0.0
            return
        params = model.params
        learned = params.n_labels if params.n_negatives is None else params.n_negatives
        self.model_weight = self.rules.model.weight(learned)

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
        if isinstance(event, Outcome):
            state.declared = event.outcome
        for signal in state.signals:
            signal.learn_one(event)
        trigger = Trigger(event.event_id, source.topic, source.partition, source.offset)
        applied, _ = self._evaluate(state, state.watermark, trigger, event.ts, snapshot=True)
        return applied

    def tick(self, state: CustomerState, now: datetime, trigger: Trigger) -> Applied:
        """The sweep's visit to a customer who sent nothing since before ``now``: score, mature
        labels and decide the level as of ``now``. ``expired`` when the customer has been idle
        for the TTL with nothing at stake (level none, nothing overdue, no label pending): the
        caller then forgets the state. Ticks keep no label snapshots; only events do."""
        if _ms(now) <= state.watermark_ms:
            return Applied(skipped=True)
        applied, dpd = self._evaluate(state, now, trigger, now, snapshot=False)
        idle_ms = _ms(now) - state.watermark_ms
        expired = (
            idle_ms >= self.rules.idle_ttl_days * DAY_MS
            and state.alert.level is Level.NONE
            and state.alert.notified is Level.NONE
            and dpd == 0
            and not state.labels.pending
        )
        return Applied(False, applied.alerts, applied.examples, expired=expired)

    def wake_at(self, state: CustomerState, now: datetime) -> datetime:
        """When the sweep should next look at this customer if they send nothing: a due date
        or an expected salary passing, a label maturing, the daily re-examination of a customer
        above level none, or the idle TTL."""
        wake = state.watermark + timedelta(days=self.rules.idle_ttl_days)
        for signal in state.signals:
            at = signal.wake_at(now)
            if at is not None and at < wake:
                wake = at
        at = state.labels.next_maturity()
        if at is not None and at < wake:
            wake = at
        if state.alert.level > Level.NONE or state.alert.notified > Level.NONE:
            wake = min(wake, _next_midnight(now))
        return wake

    def _evaluate(
        self,
        state: CustomerState,
        now: datetime,
        trigger: Trigger,
        event_time: datetime,
        *,
        snapshot: bool,
    ) -> tuple[Applied, float]:
        """Score as of ``now``, mature labels and decide the level; also returns DPD."""
        features: dict[str, float] = {}
        for signal in state.signals:
            features.update(signal.score_one(now))
        score = self.probability(features)
        dpd = features.get("dpd", 0.0)
        examples = self._mature(state, now, features, dpd, snapshot=snapshot)
        floor = self.policy.floor(dpd)
        state.score = score
        transition = self.policy.decide(state.alert, _ms(now), score, floor)
        if transition is None:
            return Applied(skipped=False, examples=examples), dpd
        scored = self.score(features)  # contributions, for the reasons: only when alerting
        alert = Alert(
            alert_id=alert_id(
                state.customer_id,
                transition.kind,
                transition.level,
                trigger.event_id,
                self.rules.version,
                self.model_version,
            ),
            customer_id=state.customer_id,
            kind=transition.kind,
            level=transition.level,
            previous_level=transition.previous,
            score=score,
            reasons=self.reasons(scored, floor, dpd, self._details(state, now)),
            trigger=trigger,
            event_time=event_time,
            model_version=self.model_version,
            rules_version=self.rules.version,
            features_hash=features_hash(features),
        )
        return Applied(skipped=False, alerts=(alert,), examples=examples), dpd

    @staticmethod
    def _details(state: CustomerState, now: datetime) -> dict[str, str | float]:
        details: dict[str, str | float] = {}
        for signal in state.signals:
            details.update(signal.details(now))
        return details

    def probability(self, features: dict[str, float]) -> float:
        """The blended score alone; equal to ``score(features).score`` to the last bit."""
        card = self.scorecard.probability(features)
        w = self.model_weight
        if self.model is None or w <= 0:
            return card
        return (1 - w) * card + w * self.model.predict_proba(features)

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
        self,
        state: CustomerState,
        now: datetime,
        features: dict[str, float],
        dpd: float,
        *,
        snapshot: bool,
    ) -> tuple[LabelledExample, ...]:
        """Emit the labels that time or going bad decides; keep a scoring snapshot when due.

        Bad is ``bad_dpd`` days past due or a declared default, write-off or restructuring; a
        declared cure lifts a declared bad. A closed customer keeps no new snapshots."""
        declared_bad = state.declared in BAD_OUTCOMES
        bad = dpd >= self.rules.model.bad_dpd or declared_bad
        if state.labels.bad and dpd == 0 and not declared_bad:
            state.labels.reset_after_cure()
        examples = tuple(state.labels.observe(now, bad))
        if snapshot and not bad and state.declared is not OutcomeKind.CLOSED:
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


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _next_midnight(now: datetime) -> datetime:
    return datetime.fromordinal(now.toordinal() + 1).replace(tzinfo=UTC)


def _render(template: str, value: float, details: dict[str, str | float]) -> str:
    """Fill a reason template; a detail the signal cannot offer yet leaves a plain text."""
    try:
        return template.format(value=value, **details)
    except (KeyError, ValueError, IndexError):
        return template.split("{", 1)[0].strip() or f"value {value:,.2f}"
