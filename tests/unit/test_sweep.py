"""The event-time sweep: customers who send nothing still move, driven by the partition's clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson

from config.rules import load_rules
from config.settings import Topics
from detectors.alert import AlertKind, Level
from detectors.engine import RiskDetector
from streams.applier import SWEEP_TOPIC, day_of, wake_day
from streams.records import decoders
from streams.replay import Recorded, ReplayResult, replay
from tests.support import rules_without_warmup

TOPICS = Topics()
DECODERS = decoders(TOPICS)
START = datetime(2025, 1, 1, tzinfo=UTC)


def _ts(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def payment(customer: str, n: int, due: date, paid: str, kind: str = "due") -> Recorded:
    ts = datetime(due.year, due.month, due.day, tzinfo=UTC)
    body = {
        "schema_version": 1,
        "event_id": f"rp-{customer}-{n}-{kind}",
        "customer_id": customer,
        "loan_id": f"loan-{customer}",
        "ts": _ts(ts),
        "type": kind,
        "instalment_no": n,
        "due_date": due.isoformat(),
        "amount_due": "500.00",
        "amount_paid": paid,
    }
    return Recorded(TOPICS.repayments, customer.encode(), orjson.dumps(body))


def spend(customer: str, ts: datetime) -> Recorded:
    body = {
        "schema_version": 1,
        "event_id": f"tx-{customer}-{_ts(ts)}",
        "customer_id": customer,
        "account_id": f"acct-{customer}",
        "ts": _ts(ts),
        "amount": "20.00",
        "currency": "EUR",
        "direction": "debit",
        "channel": "card",
        "mcc": "5411",
        "counterparty": "grocer",
        "balance_after": "1500.00",
        "credit_limit": "1000.00",
        "status": "posted",
    }
    return Recorded(TOPICS.transactions, customer.encode(), orjson.dumps(body))


def daily_spend(customer: str, days: int) -> list[Recorded]:
    return [spend(customer, START + timedelta(days=d, hours=12)) for d in range(days)]


def run(messages: list[Recorded], chunk: int = 500) -> ReplayResult:
    detector = RiskDetector(rules_without_warmup(), "scorecard-0")
    return replay(messages, DECODERS, detector, partitions=1, chunk=chunk)


def silent_debtor() -> list[Recorded]:
    """``quiet`` owes an instalment on 2025-01-10, never pays and never sends anything else."""
    return [payment("quiet", 1, date(2025, 1, 10), "0.00")]


def test_silent_customer_falls_overdue_on_the_partition_clock() -> None:
    """With a busy neighbour moving the clock, the silent debtor reaches amber on the day the
    30-days-past-due floor holds and red by 90 days past due at the latest (the score may get
    there first), each raised by the sweep at a midnight."""
    result = run(silent_debtor() + daily_spend("busy", 130))
    alerts = [a for a in result.alerts if a.customer_id == "quiet"]
    floors = {
        a.level: a for a in alerts if a.level in (Level.AMBER, Level.RED) and not a.sla_breach
    }
    assert set(floors) == {Level.AMBER, Level.RED}
    amber, red = floors[Level.AMBER], floors[Level.RED]
    assert amber.event_time == datetime(2025, 2, 9, tzinfo=UTC)  # 30 days after 2025-01-10
    assert amber.event_time < red.event_time <= datetime(2025, 4, 10, tzinfo=UTC)  # 90 days
    assert red.event_time.time() == datetime.min.time()
    assert red.kind is AlertKind.ESCALATED
    for alert in (amber, red):
        assert alert.trigger.topic == SWEEP_TOPIC
        assert alert.trigger.event_id == f"sweep:0:{alert.event_time.date().isoformat()}"
        assert alert.reasons[0].code.startswith("DPD_")


def test_no_events_no_time_passes() -> None:
    """The clock is event time: alone in its partition, the debtor is never swept."""
    result = run(silent_debtor())
    assert result.ticks == 0
    assert all(a.trigger.topic != SWEEP_TOPIC for a in result.alerts)


def test_batching_does_not_move_the_sweep() -> None:
    messages = silent_debtor() + daily_spend("busy", 130)
    one = run(messages, chunk=1)
    many = run(messages, chunk=10_000)
    assert [a.alert_id for a in one.alerts] == [a.alert_id for a in many.alerts]
    assert one.ticks == many.ticks > 0


def test_held_snapshot_matures_for_a_silent_customer() -> None:
    """A customer scored once and then silent gets their negative label when the horizon
    passes on the partition clock, stamped snapshot + horizon."""
    messages = [spend("once", START + timedelta(hours=1)), *daily_spend("busy", 100)]
    result = run(messages)
    examples = [e for customer, e in result.examples if customer == "once"]
    assert len(examples) == 1
    assert examples[0].label is False
    assert examples[0].matured_ts == START + timedelta(hours=1, days=90)


def test_idle_customer_expires_after_the_ttl_unless_at_risk() -> None:
    ttl = load_rules().idle_ttl_days
    messages = [
        spend("idle", START + timedelta(hours=1)),
        *silent_debtor(),
        *daily_spend("busy", ttl + 10),
    ]
    result = run(messages)
    assert "idle" not in result.states
    assert result.expired == 1
    assert "quiet" in result.states, "a customer with an instalment overdue is never forgotten"
    assert result.states["quiet"].alert.level is Level.RED


def test_expiry_waits_for_the_full_ttl() -> None:
    ttl = load_rules().idle_ttl_days
    messages = [spend("idle", START + timedelta(hours=1)), *daily_spend("busy", ttl - 1)]
    assert "idle" in run(messages).states


def test_day_arithmetic() -> None:
    assert day_of(datetime(1970, 1, 2, 23, 59, tzinfo=UTC)) == 1
    assert wake_day(datetime(1970, 1, 2, tzinfo=UTC)) == 1
    assert wake_day(datetime(1970, 1, 2, 0, 0, 1, tzinfo=UTC)) == 2
