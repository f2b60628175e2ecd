"""The seeded inputs the reliability scenarios replay, and their expected outcomes.

``main``: 160 simulated customers over four months (about 19,000 events, a third of the customers
deteriorating, 12 malformed messages of every kind): large enough that a fault lands mid-stream
and alerts are raised, small enough for a scenario to run in well under a minute. ``clean`` and
``dirty`` are one larger population without and with 10 % malformed messages (the throughput
scenario). The expected alerts and dead letters come from the offline replay of the same input
with the same partition count (the event-time sweep is per partition), computed once each.
"""

from __future__ import annotations

import asyncio
import functools

from config.settings import Settings, load_settings
from streams.replay import ReplayResult
from streams.simulator import CustomerTruth, GeneratedStream, Simulation, generate, simulate
from tests.support import expected, produce, recorded

#: malformed messages per valid one, so that they are 10 % of all input
DIRTY_SHARE = 0.1 / 0.9


@functools.cache
def stream(name: str = "main") -> GeneratedStream:
    """One of the named seeded inputs (generated once per process)."""
    if name == "main":
        return generate(customers=160, days=120, seed=31, deteriorating_share=0.35, malformed=12)
    share = {"clean": 0.0, "dirty": DIRTY_SHARE}[name]
    simulation = Simulation(
        customers=200, days=100, seed=32, deteriorating_share=0.3, malformed_share=share
    )
    truth: dict[str, CustomerTruth] = {}
    return GeneratedStream(messages=list(simulate(simulation, truth)), truth=truth)


def injected(name: str = "main") -> list[bytes]:
    """The malformed messages the simulator put in on purpose."""
    return [m.value for m in stream(name).messages if m.malformed]


@functools.cache
def replayed(partitions: int, name: str = "main") -> ReplayResult:
    """The offline replay of input ``name`` on ``partitions`` partitions, learning off. alert_ids
    and dead letters do not depend on topic names, so one replay serves every scenario."""
    settings = load_settings({}, partitions=partitions, model_learning=False)
    return expected(recorded(stream(name), settings), settings)


def produce_stream(settings: Settings, name: str = "main") -> int:
    """Create the scenario's topics and produce the whole input, before any worker starts (the
    event-time merge is then exact, so the live run must equal the replay)."""
    return asyncio.run(produce(settings, recorded(stream(name), settings)))
