"""The alert: the one domain type that leaves the detectors for the sinks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

ALERT_SCHEMA_VERSION = 1


class Level(IntEnum):
    """Risk levels in order; compare them with ``<``."""

    NONE = 0
    WATCH = 1
    AMBER = 2
    RED = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Level:
        return cls[text.upper()]


class AlertKind(StrEnum):
    RAISED = "raised"
    ESCALATED = "escalated"
    DOWNGRADED = "downgraded"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Reason:
    """One readable reason: a stable code, plain text naming the value, the value, its weight."""

    code: str
    text: str
    value: float
    contribution: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "text": self.text,
            "value": self.value,
            "contribution": round(self.contribution, 6),
        }


@dataclass(frozen=True, slots=True)
class Trigger:
    """The input message that caused the alert."""

    event_id: str
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    customer_id: str
    kind: AlertKind
    level: Level
    previous_level: Level
    score: float
    reasons: tuple[Reason, ...]
    trigger: Trigger
    event_time: datetime
    model_version: str
    rules_version: str
    features_hash: str = ""
    escalates: str = ""  # an SLA breach: the alert_id that went unanswered

    @property
    def sla_breach(self) -> bool:
        return bool(self.escalates)

    def to_dict(self, emitted_at: datetime) -> dict[str, Any]:
        """The wire form (contract v1). ``emitted_at`` is stamped by the caller, not here."""
        return {
            "schema_version": ALERT_SCHEMA_VERSION,
            "alert_id": self.alert_id,
            "customer_id": self.customer_id,
            "kind": self.kind.value,
            "level": self.level.label,
            "previous_level": self.previous_level.label,
            "score": round(self.score, 6),
            "reasons": [r.to_dict() for r in self.reasons],
            "trigger": {
                "event_id": self.trigger.event_id,
                "topic": self.trigger.topic,
                "partition": self.trigger.partition,
                "offset": self.trigger.offset,
            },
            "event_time": _rfc3339(self.event_time),
            "emitted_at": _rfc3339(emitted_at),
            "model_version": self.model_version,
            "rules_version": self.rules_version,
            "features_hash": self.features_hash,
            "sla_breach": self.sla_breach,
            "escalates": self.escalates or None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Read the wire form back (the inverse of :meth:`to_dict`, less ``emitted_at``)."""
        trigger = data["trigger"]
        return cls(
            alert_id=data["alert_id"],
            customer_id=data["customer_id"],
            kind=AlertKind(data["kind"]),
            level=Level.parse(data["level"]),
            previous_level=Level.parse(data["previous_level"]),
            score=float(data["score"]),
            reasons=tuple(
                Reason(r["code"], r["text"], r["value"], r["contribution"]) for r in data["reasons"]
            ),
            trigger=Trigger(
                trigger["event_id"], trigger["topic"], trigger["partition"], trigger["offset"]
            ),
            event_time=datetime.fromisoformat(data["event_time"]),
            model_version=data["model_version"],
            rules_version=data["rules_version"],
            features_hash=data.get("features_hash", ""),
            escalates=data.get("escalates") or "",
        )


def alert_id(
    customer_id: str,
    kind: AlertKind,
    level: Level,
    trigger_event_id: str,
    rules_version: str,
    model_version: str,
) -> str:
    """Deterministic id: the same decision on the same event under the same versions."""
    material = "\x1f".join(
        (customer_id, kind.value, level.label, trigger_event_id, rules_version, model_version)
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _rfc3339(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")
