"""The detector the streams call: one event in, the customer's state updated, alerts out.

Pure: no Kafka, Redis, environment or clock. Time is the event time of the customer's own
events (the largest seen so far), or, for a customer who sends nothing, the time the caller's
event-time sweep passes in (:meth:`RiskDetector.tick`, at the :meth:`RiskDetector.wake_at` the
state asked for), so a replay decides exactly as the live run did.

Feedback from people (:class:`~detectors.events.Feedback`) is applied in the same merge order but
does not move the customer's clock: a click is not evidence about the customer. It answers the
escalation clock of the alert it names (or the customer's, when it names none), sets or lifts a
snooze, and turns ``false_positive`` / ``confirmed_risk`` into a human-labelled example scored on
the customer's features as of their own latest event. An amber or red alert that rises and is
not answered within the level's SLA (rules ``[escalation]``) gets one ``escalated`` alert that
names it (``escalates``): decided at the customer's next event, feedback or sweep at or after the
deadline, never more than once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from config.rules import Rules
from detectors.alert import Alert, AlertKind, Level, Reason, Trigger, alert_id
from detectors.events import (
    BAD_OUTCOMES,
    Event,
    Feedback,
    FeedbackAction,
    Outcome,
    OutcomeKind,
    Source,
)
from detectors.labels import LabelledExample, features_hash
from detectors.levels import DAY_MS, Clock, LevelPolicy, Transition
from detectors.model import ParamScorer
from detectors.scorecard import Contribution, Scorecard, Scored
from detectors.state import CustomerState, default_labels

MAX_REASONS = 4
MIN_REASON_CONTRIBUTION = 0.1
HOUR_MS = 3_600_000
ANSWERS = frozenset(FeedbackAction) - {FeedbackAction.UNSNOOZE}
"""Feedback that answers an alert, stopping its escalation clock."""
HUMAN_LABELS = {FeedbackAction.FALSE_POSITIVE: False, FeedbackAction.CONFIRMED_RISK: True}
MAX_HELD = 3
"""A snapshot is kept only while fewer than this are held in all, before and in arrears. With the
default spacing (30 days) and horizon (90) one kind alone never holds more than three; both
together would push the state of a customer cured of arrears over 1 KB."""


@dataclass(frozen=True, slots=True)
class Applied:
    """What one event did: ``skipped`` when it was a redelivery, else the alerts it raised and
    the labelled examples that matured (for the trainer); ``expired`` when a sweep found the
    customer idle past the TTL and the state may be forgotten; ``feedback`` the applied answer,
    for the audit trail."""

    skipped: bool
    alerts: tuple[Alert, ...] = ()
    examples: tuple[LabelledExample, ...] = ()
    expired: bool = False
    feedback: Feedback | None = None


_SKIPPED = Applied(skipped=True)
_QUIET = Applied(skipped=False)  # most events: applied, nothing raised, nothing matured


class RiskDetector:
    """Applies events to customer state, scores before learning, and decides alerts."""

    def __init__(self, rules: Rules, model_version: str, model: ParamScorer | None = None) -> None:
        self.rules = rules
        self.scorecard_version = model_version
        self.scorecard = Scorecard(rules)
        self.policy = LevelPolicy(rules)
        self._idle_ttl = timedelta(days=rules.idle_ttl_days)
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
        rules = self.rules.model
        return CustomerState(
            customer_id=customer_id,
            labels=default_labels(rules),
            arrears=default_labels(rules, warmup=False),
        )

    def decode_state(self, raw: bytes) -> CustomerState:
        rules = self.rules.model
        return CustomerState.decode(raw, default_labels(rules), default_labels(rules, warmup=False))

    def apply(self, state: CustomerState, event: Event, source: Source) -> Applied:
        """Fold ``event`` into ``state`` (in place) and return the alerts it triggers."""
        last = state.offsets.get(source.topic)
        if last is not None and source.offset <= last:
            return _SKIPPED
        state.offsets[source.topic] = source.offset
        trigger = Trigger(event.event_id, source.topic, source.partition, source.offset)
        if isinstance(event, Feedback):
            return self._answer(state, event, trigger)
        event_ms = int(event.ts.timestamp() * 1000)
        if event_ms < state.watermark_ms:
            state.late_events += 1
        state.watermark_ms = max(state.watermark_ms, event_ms)
        state.events += 1
        if isinstance(event, Outcome):
            state.declared = event.outcome
        for signal in state.signals:
            signal.learn_one(event)
        applied, _ = self._evaluate(state, state.watermark, trigger, event.ts, snapshot=True)
        return applied

    def tick(self, state: CustomerState, now: datetime, trigger: Trigger) -> Applied:
        """The sweep's visit to a customer who sent nothing since before ``now``: score, mature
        labels and decide the level as of ``now``. ``expired`` when the customer has been idle
        for the TTL with nothing at stake (level none, nothing overdue, no label pending): the
        caller then forgets the state. Ticks keep no label snapshots; only events do."""
        if _ms(now) <= state.watermark_ms:
            return _SKIPPED
        applied, dpd = self._evaluate(state, now, trigger, now, snapshot=False)
        idle_ms = _ms(now) - state.watermark_ms
        expired = (
            idle_ms >= self.rules.idle_ttl_days * DAY_MS
            and state.alert.level is Level.NONE
            and state.alert.notified is Level.NONE
            and dpd == 0
            and not state.labels.pending
            and not state.arrears.pending
        )
        return Applied(False, applied.alerts, applied.examples, expired=expired)

    def wake_at(self, state: CustomerState, now: datetime) -> datetime:
        """When the sweep should next look at this customer if they send nothing: a due date
        or an expected salary passing, a label maturing, the daily re-examination of a customer
        above level none, or the idle TTL."""
        wake = state.watermark + self._idle_ttl
        for signal in state.signals:
            at = signal.wake_at(now)
            if at is not None and at < wake:
                wake = at
        for maturer in (state.labels, state.arrears):
            at = maturer.next_maturity()
            if at is not None and at < wake:
                wake = at
        if state.alert.level > Level.NONE or state.alert.notified > Level.NONE:
            wake = min(wake, _next_midnight(now))
        if state.alert.sla is not None:
            wake = min(wake, _from_ms(state.alert.sla.due_ms))
        return wake

    def _answer(self, state: CustomerState, feedback: Feedback, trigger: Trigger) -> Applied:
        """Apply a person's answer at its own time (the customer's clock stays where it is).

        An SLA that ran out before the answer is breached first: the answer came too late."""
        features = self._features(state, state.watermark)
        alerts = self._breach(
            state, _ms(feedback.ts), trigger, feedback.ts, state.watermark, features
        )
        clock = state.alert.sla
        if (
            clock is not None
            and feedback.action in ANSWERS
            and feedback.alert_id in (None, clock.alert_id)
        ):
            state.alert.sla = None
        if feedback.action is FeedbackAction.SNOOZE:
            assert feedback.until is not None
            state.alert.snooze_until_ms = _ms(feedback.until)
            state.alert.snooze_code = feedback.reason_code
        elif feedback.action is FeedbackAction.UNSNOOZE:
            state.alert.snooze_until_ms = 0
            state.alert.snooze_code = None
        examples: tuple[LabelledExample, ...] = ()
        label = HUMAN_LABELS.get(feedback.action)
        if label is not None and state.watermark_ms > 0:
            matured = max(feedback.ts, state.watermark)
            examples = (LabelledExample(state.watermark, matured, features, label, human=True),)
        return Applied(skipped=False, alerts=alerts, examples=examples, feedback=feedback)

    def _breach(
        self,
        state: CustomerState,
        now_ms: int,
        trigger: Trigger,
        event_time: datetime,
        now: datetime,
        features: dict[str, float],
    ) -> tuple[Alert, ...]:
        """The SLA breach of the running escalation clock, if it ran out by ``now_ms``."""
        clock = state.alert.sla
        if clock is None or now_ms < clock.due_ms:
            return ()
        state.alert.sla = None
        breach = Transition(AlertKind.ESCALATED, clock.level, clock.level)
        alert = self._alert(
            state, breach, trigger, event_time, now, features, escalates=clock.alert_id
        )
        return (alert,)

    def _start_clock(self, state: CustomerState, alert: Alert, now_ms: int) -> None:
        """A rising amber or red alert starts its clock; a fall below the clock's level stops
        it (the breach itself stopped it already)."""
        hours = self.rules.escalation.hours(alert.level.label)
        rising = alert.kind in (AlertKind.RAISED, AlertKind.ESCALATED)
        if rising and hours is not None:
            due = now_ms + round(hours * HOUR_MS)
            state.alert.sla = Clock(alert.alert_id, alert.level, due)
        elif state.alert.sla is not None and alert.level < state.alert.sla.level:
            state.alert.sla = None

    def _evaluate(
        self,
        state: CustomerState,
        now: datetime,
        trigger: Trigger,
        event_time: datetime,
        *,
        snapshot: bool,
    ) -> tuple[Applied, float]:
        """Score as of ``now``, mature labels, breach a lapsed SLA and decide the level; also
        returns DPD."""
        features = self._features(state, now)
        score = self.probability(features)
        dpd = features.get("dpd", 0.0)
        examples = self._mature(state, now, features, dpd, snapshot=snapshot)
        floor = self.policy.floor(dpd)
        state.score = score
        now_ms = _ms(now)
        alerts = list(self._breach(state, now_ms, trigger, event_time, now, features))

        def leading_reason() -> str | None:
            reasons = self.reasons(self.score(features), floor, dpd, self._details(state, now))
            return reasons[0].code if reasons else None

        transition = self.policy.decide(state.alert, now_ms, score, floor, leading_reason)
        if transition is not None:
            alert = self._alert(state, transition, trigger, event_time, now, features)
            self._start_clock(state, alert, now_ms)
            alerts.append(alert)
        if not alerts and not examples:
            return _QUIET, dpd
        return Applied(skipped=False, alerts=tuple(alerts), examples=examples), dpd

    @staticmethod
    def _features(state: CustomerState, now: datetime) -> dict[str, float]:
        features: dict[str, float] = {}
        update = features.update
        for signal in state.signals:
            update(signal.score_one(now))
        return features

    def _alert(
        self,
        state: CustomerState,
        transition: Transition,
        trigger: Trigger,
        event_time: datetime,
        now: datetime,
        features: dict[str, float],
        escalates: str = "",
    ) -> Alert:
        """The alert for ``transition``, scored ``state.score``, with reasons as of ``now``.
        An SLA breach's id derives from the alert it escalates, so there is one per alert."""
        dpd = features.get("dpd", 0.0)
        scored = self.score(features)  # contributions, for the reasons: only when alerting
        return Alert(
            alert_id=alert_id(
                state.customer_id,
                transition.kind,
                transition.level,
                f"sla:{escalates}" if escalates else trigger.event_id,
                self.rules.version,
                self.model_version,
            ),
            customer_id=state.customer_id,
            kind=transition.kind,
            level=transition.level,
            previous_level=transition.previous,
            score=state.score,
            reasons=self.reasons(scored, self.policy.floor(dpd), dpd, self._details(state, now)),
            trigger=trigger,
            event_time=event_time,
            model_version=self.model_version,
            rules_version=self.rules.version,
            features_hash=features_hash(features),
            escalates=escalates,
        )

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
        declared cure lifts a declared bad. Before a customer is bad, a snapshot asks "bad within
        the horizon?" (``state.labels``). While bad by days past due alone and below
        ``severe_dpd``, a snapshot asks "``severe_dpd`` or a declared bad within the horizon?"
        (``state.arrears``): without these the model never saw a customer in arrears, and gave
        days past due no weight. A snapshot waits while ``MAX_HELD`` are held in all. A closed
        customer keeps no new snapshots, and days past due no longer make it bad: held snapshots
        mature negative unless the bank declares a default, write-off or restructuring."""
        rules = self.rules.model
        declared_bad = state.declared in BAD_OUTCOMES
        if state.declared is OutcomeKind.CLOSED:
            dpd = 0.0  # the schedule ended with the account; a debt's fate is the bank's to declare
        bad = dpd >= rules.bad_dpd or declared_bad
        severe = dpd >= rules.severe_dpd or declared_bad
        labels, arrears = state.labels, state.arrears
        if labels.bad and dpd == 0 and not declared_bad:
            labels.reset_after_cure()
        examples = labels.observe(now, bad)
        if arrears.pending:
            examples += arrears.observe(now, severe)
        if (arrears.bad and not severe) or (
            not bad and not arrears.pending and arrears.last_snapshot_ms is not None
        ):
            arrears.reset_after_cure()  # back below severe_dpd; or out of arrears, nothing held
        if (
            snapshot
            and state.declared is not OutcomeKind.CLOSED
            and not severe
            and len(labels.pending) + len(arrears.pending) < MAX_HELD
            and not (bad and labels.warming_up(now))  # in arrears too; labels.snapshot checks
        ):
            (arrears if bad else labels).snapshot(now, features)
        return tuple(examples)

    def reasons(
        self,
        scored: Scored,
        floor: Level,
        dpd: float,
        details: dict[str, str | float] | None = None,
    ) -> tuple[Reason, ...]:
        """At most four: the hard floor that fired, then the largest adverse contributions.

        Texts come from the rules file (the scorecard's features, then ``[texts]`` for features
        only the model weighs) and may name the feature's ``value`` and any value a signal's
        ``details()`` offers (e.g. the expected salary amount and date)."""
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
            template = spec.text if spec else self.rules.texts.get(part.feature)
            text = (
                _render(template, part.value, details or {})
                if template
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


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _next_midnight(now: datetime) -> datetime:
    return datetime.fromordinal(now.toordinal() + 1).replace(tzinfo=UTC)


def _render(template: str, value: float, details: dict[str, str | float]) -> str:
    """Fill a reason template; a detail the signal cannot offer yet leaves a plain text."""
    try:
        return template.format(value=value, **details)
    except (KeyError, ValueError, IndexError):
        return template.split("{", 1)[0].strip() or f"value {value:,.2f}"
