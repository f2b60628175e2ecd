"""Operations endpoints on Faust's own web server (``EWS_WEB_PORT``), one set per worker.

- ``GET /healthz``: the process and its event loop answer (liveness). Always 200.
- ``GET /readyz``: 200 when input partitions are assigned, no rebalance or table recovery is
  running, Redis and the Kafka cluster answer a ping, sink writes are not failing, and the commit
  watchdog sees no stalled partition; else 503 with the reasons as JSON.
- ``GET /metrics``: Prometheus text (``streams.metrics``) read from the counters the pipeline,
  the delivery and the watchdog keep anyway: nothing extra runs per event.
- ``GET /customers/{id}``: the customer's current risk state from the worker's table. Faust's
  table router sends the request to the worker that owns the customer's partition. A customer not
  in the table is 404, or 503 with ``Retry-After`` while a rebalance or table recovery runs, since
  the owner may not have restored it yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import faust
from faust import web

from detectors.engine import RiskDetector
from detectors.state import CustomerState
from streams.metrics import CONTENT_TYPE, Family, Sample, histogram, render
from streams.pipeline import Pipeline


class Probes:
    """What the endpoints read: the app, its pipeline, the input topics."""

    def __init__(self, app: faust.App, pipeline: Pipeline, inputs: Iterable[str]) -> None:
        self.app = app
        self.pipeline = pipeline
        self.inputs = frozenset(inputs)

    def assigned(self) -> list[tuple[str, int]]:
        try:
            assignment = self.app.consumer.assignment()
        except Exception:  # consumer not started yet
            return []
        return sorted((tp.topic, tp.partition) for tp in assignment if tp.topic in self.inputs)

    def restoring(self) -> bool:
        """A rebalance or a table recovery is running: the table may not hold every customer yet."""
        app = self.app
        return bool(getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False))

    async def not_ready(self) -> list[str]:
        """Why this worker should not be counted on now; empty when it is ready."""
        reasons = []
        if not self.assigned():
            reasons.append("no input partitions assigned")
        if getattr(self.app, "rebalancing", False):
            reasons.append("rebalancing")
        if getattr(self.app, "in_recovery", False):
            reasons.append("restoring tables from changelogs")
        reasons += await self.pipeline.delivery.ping()
        watchdog = self.pipeline.watchdog
        if watchdog is not None and watchdog.stalled:
            stalled = ", ".join(f"{t}:{p}" for t, p in sorted(watchdog.stalled))
            reasons.append(f"commits stalled behind acked or fetchable work on {stalled}")
        return reasons

    def lag(self) -> dict[tuple[str, int], int]:
        """Per assigned input partition: the broker's end offset minus the committed offset."""
        consumer = self.app.consumer
        committed = getattr(consumer, "_committed_offset", {})
        lag = {}
        for topic, partition in self.assigned():
            tp = faust.types.TP(topic, partition)
            try:
                end = consumer.highwater(tp)
            except Exception:
                continue
            if isinstance(end, int) and end >= 0:
                lag[(topic, partition)] = max(0, end - (committed.get(tp) or 0))
        return lag

    def families(self) -> list[Family]:
        pipeline = self.pipeline
        c = pipeline.counters
        detector: RiskDetector = pipeline.detector
        params = detector.model.params if detector.model is not None else None
        latency = pipeline.delivery.latency
        watchdog = pipeline.watchdog

        def counter(name: str, help: str, value: float) -> Family:
            return Family(name, "counter", help, [Sample(value)])

        def gauge(name: str, help: str, value: float) -> Family:
            return Family(name, "gauge", help, [Sample(value)])

        lag = self.lag()
        return [
            counter("ews_events_in_total", "Input messages taken from Kafka.", c.events_in),
            counter("ews_events_applied_total", "Events applied to customer state.", c.applied),
            counter(
                "ews_events_skipped_total",
                "Redelivered events and dead letters skipped as already done.",
                c.skipped,
            ),
            counter(
                "ews_dead_letters_total",
                "Messages written to the dead-letter topic.",
                c.dead_letters,
            ),
            Family(
                "ews_alerts_total",
                "Alerts emitted, by level and kind.",
                "counter",
                [
                    Sample(n, {"level": lv, "kind": k})
                    for (lv, k), n in sorted(pipeline.alerts_by.items())
                ],
            ),
            counter(
                "ews_alerts_delivered_total",
                "Alerts acknowledged by Redis and Kafka.",
                pipeline.delivery.delivered,
            ),
            Family(
                "ews_consumer_lag",
                "Messages on the broker beyond the committed offset, per input partition.",
                "gauge",
                [
                    Sample(behind, {"topic": topic, "partition": str(partition)})
                    for (topic, partition), behind in lag.items()
                ],
            ),
            gauge("ews_consumer_lag_total", "Sum of ews_consumer_lag.", sum(lag.values())),
            histogram(
                "ews_sink_latency_seconds",
                "Time to deliver a batch of alerts to Redis and Kafka, retries included.",
                latency.bounds,
                latency.counts,
                latency.sum_s,
            ),
            gauge(
                "ews_sinks_healthy",
                "1 while sink writes succeed, 0 while retrying.",
                int(pipeline.delivery.healthy),
            ),
            Family(
                "ews_model_info",
                "The model version alerts name now, and the rules version.",
                "gauge",
                [Sample(1, {"version": detector.model_version, "rules": detector.rules.version})],
            ),
            gauge(
                "ews_model_weight",
                "Weight of the online model against the scorecard.",
                detector.model_weight,
            ),
            gauge(
                "ews_model_labels_learned",
                "Labels the model in use was trained on.",
                params.n_labels if params else 0,
            ),
            gauge(
                "ews_model_negative_labels_learned",
                "Negative labels the model in use was trained on.",
                (params.n_negatives or 0) if params else 0,
            ),
            gauge(
                "ews_model_human_labels_learned",
                "Labels from people (false_positive, confirmed_risk) the model in use learned.",
                (params.n_human_labels or 0) if params else 0,
            ),
            counter(
                "ews_labels_emitted_total",
                "Labels sent to the training topic (matured and human).",
                c.examples,
            ),
            counter(
                "ews_human_labels_emitted_total",
                "Of those, labels from people's false_positive / confirmed_risk feedback.",
                c.human_labels,
            ),
            counter("ews_feedback_applied_total", "Feedback events applied.", c.feedback),
            counter("ews_sweep_ticks_total", "Event-time sweep visits to idle customers.", c.ticks),
            counter("ews_customers_expired_total", "Idle customer states expired.", c.expired),
            gauge(
                "ews_assigned_partitions",
                "Input partitions assigned to this worker.",
                len(self.assigned()),
            ),
            gauge(
                "ews_commit_stalled_partitions",
                "Partitions the commit watchdog sees stalled.",
                len(watchdog.stalled) if watchdog else 0,
            ),
            counter(
                "ews_commit_reseeks_total",
                "Seeks back to a stalled committed offset.",
                watchdog.reseeks if watchdog else 0,
            ),
        ]


def customer_view(state: CustomerState) -> dict[str, Any]:
    """The JSON body of ``/customers/{id}``."""
    alert = state.alert
    snooze = alert.snooze_until_ms
    clock = alert.sla
    return {
        "customer_id": state.customer_id,
        "level": alert.level.label,
        "notified_level": alert.notified.label,
        "score": round(state.score, 6),
        "events": state.events,
        "late_events": state.late_events,
        "event_time": _rfc3339_ms(state.watermark_ms) if state.watermark_ms else None,
        "snoozed_until": _rfc3339_ms(snooze) if snooze else None,
        "snoozed_reason_code": alert.snooze_code,
        "escalation_due": None
        if clock is None
        else {
            "alert_id": clock.alert_id,
            "level": clock.level.label,
            "due": _rfc3339_ms(clock.due_ms),
        },
        "declared_outcome": state.declared.value if state.declared else None,
        "offsets": state.offsets,
    }


def install(app: faust.App, probes: Probes, table: Any) -> None:
    """Add the four endpoints to the app's web server."""

    @app.page("/healthz")
    class Healthz(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.json({"status": "alive"})

    @app.page("/readyz")
    class Readyz(web.View):
        async def get(self, request: web.Request) -> web.Response:
            reasons = await probes.not_ready()
            if reasons:
                return self.json({"ready": False, "reasons": reasons}, status=503)
            return self.json({"ready": True, "partitions": len(probes.assigned())})

    @app.page("/metrics")
    class Metrics(web.View):
        async def get(self, request: web.Request) -> web.Response:
            body = render(probes.families()).encode()
            return self.bytes(body, headers={"Content-Type": CONTENT_TYPE})

    @app.page("/customers/{customer_id}")
    class Customer(web.View):
        @app.table_route(table=table, match_info="customer_id")  # type: ignore[arg-type]
        async def get(self, request: web.Request, customer_id: str) -> web.Response:
            raw = table.get(customer_id.encode())
            if raw is None and probes.restoring():
                return self.json(
                    {"error": "restoring state, retry", "customer_id": customer_id},
                    status=503,
                    headers={"Retry-After": "1"},
                )
            if raw is None:
                return self.json(
                    {"error": "unknown customer", "customer_id": customer_id}, status=404
                )
            state = probes.pipeline.detector.decode_state(raw)
            return self.json(customer_view(state))


def _rfc3339_ms(ms: int) -> str:
    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
