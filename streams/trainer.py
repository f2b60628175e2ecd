"""The trainer agent: learns matured examples from ``ews.training``, publishes model versions.

``ews.training`` has one partition, so exactly one worker trains the one global model. Each
example is scored before it is learned (prequential), which gives honest running figures (Brier
score, expected calibration error, ROC AUC) logged with every publication. The trainer's whole
state is written to its own changelog-backed table after every example, so a restarted trainer
continues exactly; every ``publish_every`` labels it writes the parameters (JSON, never pickle)
to a global table that every worker's scorers read between batches.

A worker that restarts, or takes over partitions, applies again the events after the last
commit and sends their labels again. A customer's labels mature oldest snapshot first, so the
trainer keeps, per customer, the newest snapshot time it learned and skips any example at or
before it: each label is learned once (duplicates are counted and logged). Labels from people
(``human``) are kept apart the same way, by the answer's time under their own key: an answer's
features are the customer's latest, later than the snapshots still maturing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import structlog

from detectors.calibration import brier, expected_calibration_error, roc_auc
from detectors.labels import LabelledExample
from detectors.model import OnlineRiskModel

log = structlog.get_logger(__name__)

STATE_KEY = b"trainer"
CURRENT_KEY = b"current"
WINDOW = 2000


class Trainer:
    def __init__(
        self,
        *,
        state_table: Any,
        model_table: Any,
        publish_every: int,
        steps: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        """``steps``: the rules' ``[model.steps]``, for a model started here; a model restored
        from the table keeps those it was started with."""
        self.state_table = state_table
        self.model_table = model_table
        self.publish_every = publish_every
        self.steps = steps
        self.recent: deque[tuple[float, bool]] = deque(maxlen=WINDOW)
        self.rejected = 0
        self.duplicates = 0
        self._last: tuple[bytes, OnlineRiskModel] | None = None  # the state it wrote, as a model

    async def run(self, stream: Any) -> None:
        async for event in stream.events():
            self.learn(event.value)

    def learn(self, raw: bytes) -> None:
        """Learn one example from ``ews.training`` unless it is bad or already learned."""
        decoded = self._decode(raw)
        if decoded is None:
            return
        customer_id, example = decoded
        if example.human:  # stamped with the answer's time; apart from the maturing snapshots
            seen_key, stamp = b"\x00seen-human:" + customer_id.encode(), example.matured_ts
        else:
            seen_key, stamp = b"\x00seen:" + customer_id.encode(), example.snapshot_ts
        snapshot_ms = int(stamp.timestamp() * 1000)
        seen = self.state_table.get(seen_key)
        if seen is not None and snapshot_ms <= int(seen):
            self.duplicates += 1
            log.info("training_example_duplicate", customer_id=customer_id, total=self.duplicates)
            return
        model = self._model()
        self._last = None  # until the table holds what it learns next, the table decides
        self.recent.append((model.predict_proba(example.features), example.label))
        model.learn_one(example.features, example.label, human=example.human)
        # Model first: a crash between the two writes can at worst learn this one again.
        state = orjson.dumps(model.to_state())
        self.state_table[STATE_KEY] = state
        self._last = (state, model)
        self.state_table[seen_key] = str(snapshot_ms).encode()
        if model.n_labels % self.publish_every == 0:
            self._publish(model)

    def _model(self) -> OnlineRiskModel:
        """The model in the table. When the table still holds the state this trainer wrote
        last, that model is kept in memory and reused (restoring it is bit-exact, and costs
        more than learning an example); anything else there is restored."""
        raw = self.state_table.get(STATE_KEY)
        if not raw:
            return OnlineRiskModel(steps=self.steps)
        if self._last is not None and self._last[0] == raw:
            return self._last[1]
        return OnlineRiskModel.from_state(orjson.loads(raw))

    def _decode(self, raw: bytes) -> tuple[str, LabelledExample] | None:
        try:
            data = orjson.loads(raw)
            example = LabelledExample.from_dict(data)
            customer_id = data.get("customer_id")
            if not isinstance(customer_id, str) or not customer_id:
                raise ValueError("customer_id: expected a string")
            return customer_id, example
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            self.rejected += 1
            log.warning("training_example_rejected", error=str(exc)[:200])
            return None

    def _publish(self, model: OnlineRiskModel) -> None:
        params = model.params(f"lr-{model.n_labels}")
        self.model_table[CURRENT_KEY] = params.to_json()
        probs = [p for p, _ in self.recent]
        labels = [y for _, y in self.recent]
        log.info(
            "model_published",
            version=params.version,
            labels=model.n_labels,
            human_labels=params.n_human_labels,
            positives_recent=sum(labels),
            brier_recent=round(brier(probs, labels), 4),
            ece_recent=round(expected_calibration_error(probs, labels), 4),
            auc_recent=round(roc_auc(probs, labels), 4) if 0 < sum(labels) < len(labels) else None,
        )
