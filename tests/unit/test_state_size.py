"""Every customer's stored state fits in 1 KB: over a simulated bank's 300 customers and eight
months, the most delinquent included (label snapshots held before and in arrears, many open
instalments), whose JSON passes 1 KB and is stored deflated."""

from __future__ import annotations

from config.rules import load_rules
from config.settings import Topics
from detectors.engine import RiskDetector
from detectors.state import DEFLATE_ABOVE
from streams.records import decoders
from streams.replay import replay
from streams.simulator import Simulation, as_recorded, simulate


def test_every_simulated_customers_state_fits_in_1_kb() -> None:
    topics = Topics()
    messages = as_recorded(list(simulate(Simulation(300, 240, 7), {})), topics)
    result = replay(messages, decoders(topics), RiskDetector(load_rules(), "scorecard-0"), 4)
    encoded = {customer: state.encode() for customer, state in result.states.items()}
    assert len(encoded) == 300
    deflated = [raw for raw in encoded.values() if raw[:1] == b"z"]
    assert deflated, "no state long enough to be deflated: the bound says little"
    largest = max(encoded.items(), key=lambda item: len(item[1]))
    assert len(largest[1]) <= 1000, f"{largest[0]}: {len(largest[1])} bytes"
    assert max(len(raw) for raw in encoded.values() if raw[:1] == b"{") <= DEFLATE_ABOVE
