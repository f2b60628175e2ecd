"""Readiness reasons, the metrics a worker exposes and the customer view, without a broker."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust

from config.rules import load_rules
from detectors.alert import Level
from detectors.engine import RiskDetector
from sinks.delivery import LatencyHistogram
from streams.pipeline import Counters
from streams.watchdog import CommitWatchdog
from streams.web import Probes, customer_view

INPUTS = ("t.transactions", "t.repayments", "t.outcomes")


class Consumer:
    def __init__(self, assigned: set[faust.types.TP]) -> None:
        self.assigned = assigned
        self._committed_offset = {tp: 40 for tp in assigned}

    def assignment(self) -> set[faust.types.TP]:
        return self.assigned

    def highwater(self, tp: faust.types.TP) -> int:
        return 100


class Delivery:
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.latency = LatencyHistogram()
        self.delivered = 7
        self.healthy = not problems

    async def ping(self) -> list[str]:
        return self.problems


def probes(
    assigned: set[faust.types.TP], problems: tuple[str, ...] = (), **app_flags: Any
) -> Probes:
    async def offsets(tps: Any) -> dict[Any, int | None]:
        return {}

    async def seek(tp: Any, offset: int) -> None:
        return None

    app = SimpleNamespace(consumer=Consumer(assigned), **app_flags)
    pipeline = SimpleNamespace(
        counters=Counters(events_in=12, dead_letters=2),
        alerts_by={("red", "escalated"): 3},
        detector=RiskDetector(load_rules(None), "scorecard-0"),
        delivery=Delivery(list(problems)),
        watchdog=CommitWatchdog(offsets, seek, clock=lambda: 0.0),
    )
    return Probes(app, pipeline, INPUTS)  # type: ignore[arg-type]


ONE = {faust.types.TP("t.transactions", 0), faust.types.TP("other.topic", 0)}


async def test_ready_when_partitions_are_assigned_and_sinks_answer() -> None:
    """No reason: assigned input partitions, no rebalance, sinks answer, nothing stalled."""
    assert await probes(ONE).not_ready() == []


async def test_each_cause_of_not_ready_is_named() -> None:
    """No input partition, a rebalance, a recovery, a sink problem and a stall each give a
    reason."""
    ready = probes(
        {faust.types.TP("other.topic", 0)}, ("redis: down",), rebalancing=True, in_recovery=True
    )
    ready.pipeline.watchdog.stalled.add(("t.transactions", 0))
    reasons = await ready.not_ready()
    assert reasons == [
        "no input partitions assigned",
        "rebalancing",
        "restoring tables from changelogs",
        "redis: down",
        "commits stalled behind acked or fetchable work on t.transactions:0",
    ]


def test_metrics_read_the_counters_and_the_lag() -> None:
    """The families carry the pipeline's counters, alerts by level and kind, and lag per input
    partition (end offset minus committed)."""
    samples = {
        (f.name + s.suffix, tuple(sorted(s.labels.items()))): s.value
        for f in probes(ONE).families()
        for s in f.samples
    }
    assert samples[("ews_events_in_total", ())] == 12
    assert samples[("ews_dead_letters_total", ())] == 2
    assert samples[("ews_alerts_total", (("kind", "escalated"), ("level", "red")))] == 3
    assert samples[("ews_consumer_lag", (("partition", "0"), ("topic", "t.transactions")))] == 60
    assert samples[("ews_consumer_lag_total", ())] == 60
    assert samples[("ews_model_info", (("rules", "rules-5"), ("version", "scorecard-0")))] == 1
    assert samples[("ews_alerts_delivered_total", ())] == 7


def test_customer_view_of_a_fresh_state() -> None:
    """A new customer reads as level none, no event time, no outcome."""
    detector = RiskDetector(load_rules(None), "scorecard-0")
    state = detector.new_state("c1")
    state.alert.level = Level.AMBER
    state.watermark_ms = 1_735_689_600_000
    view = customer_view(state)
    assert view["customer_id"] == "c1" and view["level"] == "amber"
    assert view["notified_level"] == "none"
    assert view["event_time"] == "2025-01-01T00:00:00.000Z"
    assert view["declared_outcome"] is None and view["snoozed_until"] is None


def test_every_metric_the_runbook_names_is_exposed() -> None:
    """The README's metrics table names only metrics /metrics serves, and names them all."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("**Metrics and what to alert on**", 1)[1].split("\n\n", 2)[1]
    documented = {
        name
        for row in table.splitlines()
        for name in re.findall(r"`(ews_[a-z_]+)", row.split("|")[1])
    }
    exposed = {f.name for f in probes(ONE).families()}
    assert documented == exposed
