"""In-stream label maturity for one customer: feature snapshots become training examples.

When a customer is scored, :meth:`LabelMaturer.snapshot` may keep the feature snapshot (at most
one per ``snapshot_every_days``, at most ``max_pending`` held). :meth:`LabelMaturer.observe`
turns held snapshots into :class:`LabelledExample`\\ s:

- the customer went bad (e.g. 30+ days past due, or a default declared by the bank) less than
  ``horizon_days`` after a snapshot: that snapshot is a **positive**;
- ``horizon_days`` passed since a snapshot without the customer going bad: a **negative**.

Either way the example matures, and is emitted, at ``snapshot + horizon`` (stamped so whenever it
is observed, so the example does not depend on how often the sweep runs). A positive is known
earlier, but emitting it at once would teach the model every cohort's positives a horizon before
its negatives: a young model would learn nothing but positives (and score everyone as bad), and
an old one would always lean toward the newest positives. Held until its horizon, each snapshot
cohort reaches the trainer whole, in snapshot order.

Once bad, the maturer keeps no new snapshots until :meth:`LabelMaturer.reset_after_cure`. Call
``observe`` before ``snapshot`` at each scoring, so matured snapshots leave before a new one
arrives; with the defaults (30-day spacing, 90-day horizon, 4 held) nothing is then ever dropped.

The state is small and exact: epoch-millisecond times and feature values as a list in the order
of ``feature_names`` (the caller's fixed feature set), each value rounded once to
``significant_digits`` (6 by default: relative error at most 5e-6, ample for risk features and
about 500 bytes for 4 snapshots of 15 features; 7 is float32-like; ``None`` keeps full floats). The
rounding is idempotent, so the state round-trips exactly, and the example carries the values as
stored: training learns from, and the audit hash covers, exactly what was kept. A state written
under a different feature set (its name fingerprint differs) loses its held snapshots rather than
misreading them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

__all__ = ["LabelMaturer", "LabelledExample", "features_hash"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
DAY_MS = 86_400_000
_INT_SAFE = 2.0**53


def features_hash(features: Mapping[str, float]) -> str:
    """First 16 hex digits of sha256 over canonical JSON (sorted keys, values as floats)."""
    canonical = {name: float(value) + 0.0 for name, value in features.items()}  # -0.0 -> 0.0
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _to_ms(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise ValueError(f"timestamp must be timezone-aware (UTC), got {ts!r}")
    return (ts - EPOCH) // MS


def _from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_ts(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected an RFC 3339 string")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if ts.tzinfo is None:
        raise ValueError(f"{where}: needs a UTC offset")
    return ts.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class LabelledExample:
    """One matured training example (the caller adds the customer id). ``human``: a person's
    answer (``false_positive`` or ``confirmed_risk`` feedback), not a label time matured."""

    snapshot_ts: datetime
    matured_ts: datetime
    features: dict[str, float]
    label: bool
    human: bool = False

    @property
    def delay_days(self) -> float:
        """Days from snapshot to maturity: to going bad for a positive, the horizon otherwise."""
        return (self.matured_ts - self.snapshot_ts) / timedelta(days=1)

    @property
    def features_hash(self) -> str:
        return features_hash(self.features)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for ``ews.training``; ``delay_days`` and the hash are derived."""
        return {
            "snapshot_ts": _rfc3339(self.snapshot_ts),
            "matured_ts": _rfc3339(self.matured_ts),
            "features": dict(self.features),
            "label": self.label,
            "delay_days": self.delay_days,
            "features_hash": self.features_hash,
            "human": self.human,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LabelledExample:
        """Validate and build. Unknown keys (e.g. ``customer_id``) are ignored; a
        ``features_hash`` that does not match the features is an error."""
        if not isinstance(data, dict):
            raise ValueError("labelled example: expected an object")
        for key in ("snapshot_ts", "matured_ts", "features", "label"):
            if key not in data:
                raise ValueError(f"labelled example: missing {key}")
        raw = data["features"]
        if not isinstance(raw, dict):
            raise ValueError("features: expected an object of numbers")
        features: dict[str, float] = {}
        for name, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"features.{name}: expected a number")
            if not math.isfinite(value):
                raise ValueError(f"features.{name}: must be finite")
            features[name] = float(value)
        if not isinstance(data["label"], bool):
            raise ValueError("label: expected true or false")
        if not isinstance(data.get("human", False), bool):
            raise ValueError("human: expected true or false")
        example = cls(
            snapshot_ts=_parse_ts(data["snapshot_ts"], "snapshot_ts"),
            matured_ts=_parse_ts(data["matured_ts"], "matured_ts"),
            features=features,
            label=data["label"],
            human=data.get("human", False),
        )
        if example.matured_ts < example.snapshot_ts:
            raise ValueError("matured_ts is before snapshot_ts")
        expected = data.get("features_hash")
        if expected is not None and expected != example.features_hash:
            raise ValueError(
                f"features_hash {expected!r} does not match the features "
                f"({example.features_hash!r})"
            )
        return example


class LabelMaturer:
    """Holds one customer's pending feature snapshots until their label is known."""

    def __init__(
        self,
        feature_names: tuple[str, ...],
        snapshot_every_days: float = 30.0,
        max_pending: int = 4,
        horizon_days: float = 90.0,
        significant_digits: int | None = 6,
        warmup_days: float = 0.0,
    ) -> None:
        if len(set(feature_names)) != len(feature_names):
            raise ValueError("feature_names: duplicate names")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        if not (snapshot_every_days > 0 and horizon_days > 0):
            raise ValueError("snapshot_every_days and horizon_days must be positive")
        if not warmup_days >= 0:
            raise ValueError("warmup_days must be at least 0")
        if significant_digits is not None and not 1 <= significant_digits <= 17:
            raise ValueError("significant_digits must be 1..17 or None")
        self.feature_names = tuple(feature_names)
        self.snapshot_every_days = snapshot_every_days
        self.max_pending = max_pending
        self.horizon_days = horizon_days
        self.significant_digits = significant_digits
        self.warmup_days = warmup_days
        self._warmup_ms = round(warmup_days * DAY_MS)
        self._every_ms = round(snapshot_every_days * DAY_MS)
        self._horizon_ms = round(horizon_days * DAY_MS)
        self._fingerprint = hashlib.sha256("\x1f".join(self.feature_names).encode()).hexdigest()[:8]
        self.pending: list[
            tuple[int, list[float]]
        ] = []  # (snapshot epoch ms, values), oldest first
        self.positive: set[int] = set()  # held snapshots already known to be positives
        self.last_snapshot_ms: int | None = None
        self.first_ms: int | None = None  # the first scoring offered, when warming up
        self.bad = False
        self.dropped = 0  # snapshots pushed out because max_pending were held
        self._compacted: dict[int, list[float | int]] = {}  # to_state's rows, by snapshot ms

    @property
    def params(self) -> dict[str, Any]:
        return {
            "feature_names": self.feature_names,
            "snapshot_every_days": self.snapshot_every_days,
            "max_pending": self.max_pending,
            "horizon_days": self.horizon_days,
            "significant_digits": self.significant_digits,
            "warmup_days": self.warmup_days,
        }

    def clone(self) -> LabelMaturer:
        return LabelMaturer(**self.params)

    def quantise(self, value: float) -> float:
        """The value as it is stored: rounded to ``significant_digits`` (idempotent)."""
        value = float(value) + 0.0
        if not math.isfinite(value):
            raise ValueError(f"feature value must be finite, got {value!r}")
        if self.significant_digits is None:
            return value
        return float(f"{value:.{self.significant_digits}g}") + 0.0

    def snapshot(self, now: datetime, features: Mapping[str, float]) -> bool:
        """Keep ``features`` (scored at ``now``) if a snapshot is due; True when kept.

        Due when the customer is not bad, ``warmup_days`` have passed since the first scoring
        offered (a new customer's windows are still filling), and ``snapshot_every_days`` have
        passed since the last kept snapshot. If ``max_pending`` are already held, the oldest is
        dropped (and counted in ``dropped``): it is the one nearest to maturing, and newer ones
        still cover the horizon.
        Names outside ``feature_names`` are ignored; missing ones are stored as 0.0.
        """
        now_ms = _to_ms(now)
        if self._warming_up(now_ms) or self.bad:
            return False
        if self.last_snapshot_ms is not None and now_ms - self.last_snapshot_ms < self._every_ms:
            return False
        values = [self.quantise(features.get(name, 0.0)) for name in self.feature_names]
        if len(self.pending) >= self.max_pending:
            del self.pending[: len(self.pending) - self.max_pending + 1]
            self.positive &= {ts for ts, _ in self.pending}
            self.dropped += 1
        self.pending.append((now_ms, values))
        self.last_snapshot_ms = now_ms
        return True

    def warming_up(self, now: datetime) -> bool:
        """True for ``warmup_days`` from the first call (the customer's first scoring offered)."""
        return self._warming_up(_to_ms(now)) if self._warmup_ms else False

    def _warming_up(self, now_ms: int) -> bool:
        if not self._warmup_ms:
            return False
        if self.first_ms is None:
            self.first_ms = now_ms
        return now_ms - self.first_ms < self._warmup_ms

    def observe(self, now: datetime, bad: bool) -> list[LabelledExample]:
        """Mature what ``now`` decides, oldest first.

        Snapshots at least ``horizon_days`` old become examples matured at snapshot + horizon:
        positive if the customer went bad within the horizon, else negative. If ``bad``, every
        other held snapshot is marked positive (emitted at its own horizon), and snapshotting
        stops until :meth:`reset_after_cure`.
        """
        now_ms = _to_ms(now)
        if not bad and (not self.pending or now_ms - self.pending[0][0] < self._horizon_ms):
            return []  # nothing matures (held oldest first) and nothing to mark
        out: list[LabelledExample] = []
        keep: list[tuple[int, list[float]]] = []
        for ts_ms, values in self.pending:
            if now_ms - ts_ms >= self._horizon_ms:
                label = ts_ms in self.positive
                out.append(self._example(ts_ms, ts_ms + self._horizon_ms, values, label))
                continue
            if bad:
                self.positive.add(ts_ms)
            keep.append((ts_ms, values))
        self.pending = keep
        if len(self.positive) > len(keep):
            self.positive &= {ts for ts, _ in keep}
        if bad:
            self.bad = True
        return out

    def next_maturity(self) -> datetime | None:
        """When the oldest held snapshot matures as a negative, if one is held."""
        if not self.pending:
            return None
        return _from_ms(self.pending[0][0] + self._horizon_ms)

    def reset_after_cure(self) -> None:
        """The customer is no longer bad: snapshot again from the next scoring."""
        self.bad = False
        self.last_snapshot_ms = None

    def _example(
        self, ts_ms: int, matured_ms: int, values: list[float], label: bool
    ) -> LabelledExample:
        return LabelledExample(
            snapshot_ts=_from_ms(ts_ms),
            matured_ts=_from_ms(matured_ms),
            features=dict(zip(self.feature_names, values, strict=True)),
            label=label,
        )

    def to_state(self) -> dict[str, Any]:
        """Compact, exact JSON-able state; integral values are written as integers.

        ``t`` (the last kept snapshot) is left out when it is the newest held snapshot.
        """
        compacted = self._compacted
        if len(compacted) > len(self.pending):
            held = {ts for ts, _ in self.pending}
            self._compacted = compacted = {ts: c for ts, c in compacted.items() if ts in held}
        rows = []
        for ts, values in self.pending:  # a held snapshot never changes: compact it once
            if ts not in compacted:
                compacted[ts] = [_compact(v) for v in values]
            rows.append([ts, compacted[ts], 1] if ts in self.positive else [ts, compacted[ts]])
        state: dict[str, Any] = {"k": self._fingerprint, "p": rows}
        implied = self.pending[-1][0] if self.pending else None
        if self.last_snapshot_ms != implied:
            state["t"] = self.last_snapshot_ms
        if self.bad:
            state["b"] = 1
        if self.dropped:
            state["d"] = self.dropped
        if self.first_ms is not None:
            state["f"] = self.first_ms
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`to_state`. Held snapshots from another feature set are discarded."""
        try:
            pending = [(int(row[0]), [float(v) for v in row[1]]) for row in state["p"]]
            positive = {int(row[0]) for row in state["p"] if len(row) > 2 and row[2]}
            if "t" in state:
                last = state["t"]
                self.last_snapshot_ms = None if last is None else int(last)
            else:
                self.last_snapshot_ms = pending[-1][0] if pending else None
            self.bad = bool(state.get("b", 0))
            self.dropped = int(state.get("d", 0))
            first = state.get("f")
            kept = pending[0][0] if pending else self.last_snapshot_ms
            if first is None and self._warmup_ms and kept is not None:
                first = kept - self._warmup_ms  # from before warm-ups: warmed by its snapshot
            self.first_ms = None if first is None else int(first)
            fingerprint = state["k"]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"bad label maturer state: {exc!r}") from None
        self._compacted = {}
        if fingerprint != self._fingerprint:
            self.pending, self.positive = [], set()
            return
        if any(len(values) != len(self.feature_names) for _, values in pending):
            raise ValueError("bad label maturer state: snapshot length differs from feature_names")
        self.pending = pending[-self.max_pending :]
        self.positive = positive & {ts for ts, _ in self.pending}


def _compact(value: float) -> float | int:
    if value.is_integer() and abs(value) < _INT_SAFE:
        return int(value)
    return value
