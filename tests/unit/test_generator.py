"""The demo event generator: deterministic, on contract, and truthful about who defaults."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.generator import (
    REPAYMENTS,
    TRANSACTIONS,
    GeneratedStream,
    generate,
    to_jsonl,
    truth_to_jsonl,
)

START = date(2025, 1, 1)
DAYS = 180

TRANSACTION_FIELDS = {
    "schema_version", "event_id", "customer_id", "account_id", "ts", "amount", "currency",
    "direction", "channel", "status",
}  # fmt: skip
REPAYMENT_FIELDS = {
    "schema_version", "event_id", "customer_id", "loan_id", "ts", "type", "instalment_no",
    "due_date", "amount_due", "amount_paid",
}  # fmt: skip
CHANNELS = {"card", "atm", "transfer", "direct_debit", "salary", "cash_advance", "fee"}


@pytest.fixture(scope="module")
def stream() -> GeneratedStream:
    return generate(customers=100, days=DAYS, seed=7, malformed=9, start=START)


def valid_values(stream: GeneratedStream, name: str) -> list[dict[str, Any]]:
    return [orjson.loads(m.value) for m in stream.messages if m.stream == name and not m.malformed]


def dpd_by_day(repayments: list[dict[str, Any]]) -> dict[str, dict[date, int]]:
    """Brute force: each customer's end-of-day DPD for every day of the period."""
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in repayments:
        by_customer[event["customer_id"]].append(event)
    result: dict[str, dict[date, int]] = {}
    for customer_id, events in by_customer.items():
        daily: dict[date, int] = {}
        for offset in range(DAYS):
            day = START + timedelta(days=offset)
            owed: dict[int, tuple[date, Decimal]] = {}
            paid: dict[int, Decimal] = defaultdict(Decimal)
            for event in events:
                if date.fromisoformat(event["ts"][:10]) > day:
                    continue
                number = event["instalment_no"]
                if event["type"] == "due":
                    owed[number] = (
                        date.fromisoformat(event["due_date"]),
                        Decimal(event["amount_due"]),
                    )
                elif event["type"] == "payment":
                    paid[number] += Decimal(event["amount_paid"])
                else:
                    paid[number] -= Decimal(event["amount_paid"])
            unpaid = [due for number, (due, amount) in owed.items() if paid[number] < amount]
            daily[day] = (day - min(unpaid)).days if unpaid else 0
        result[customer_id] = daily
    return result


def first_day_at(daily: dict[date, int], threshold: int) -> date | None:
    return min((day for day, dpd in daily.items() if dpd >= threshold), default=None)


def test_same_seed_gives_byte_identical_output() -> None:
    """Two runs with the same arguments produce exactly the same messages and truth."""
    first, second = (
        generate(seed=11, customers=30, days=60),
        generate(seed=11, customers=30, days=60),
    )
    assert [(m.stream, m.key, m.value, m.event_time) for m in first.messages] == [
        (m.stream, m.key, m.value, m.event_time) for m in second.messages
    ]
    assert first.truth == second.truth


def test_different_seed_gives_different_output() -> None:
    """Changing the seed changes the messages."""
    first, second = generate(seed=1, customers=30, days=60), generate(seed=2, customers=30, days=60)
    assert [m.value for m in first.messages] != [m.value for m in second.messages]


def test_event_ids_are_unique(stream: GeneratedStream) -> None:
    """No two valid events share an event id."""
    ids = [v["event_id"] for name in (TRANSACTIONS, REPAYMENTS) for v in valid_values(stream, name)]
    assert len(ids) == len(set(ids))


def test_transactions_follow_the_contract(stream: GeneratedStream) -> None:
    """Every valid transaction has the v1 fields, a positive amount, a 'Z' time and the key."""
    for message in (m for m in stream.messages if m.stream == TRANSACTIONS and not m.malformed):
        value = orjson.loads(message.value)
        assert value.keys() >= TRANSACTION_FIELDS
        assert value["schema_version"] == 1
        assert message.key == value["customer_id"].encode()
        assert Decimal(value["amount"]) > 0
        assert value["direction"] in {"debit", "credit"}
        assert value["channel"] in CHANNELS
        assert value["status"] in {"posted", "returned", "reversed"}
        assert value["ts"].endswith("Z")
        assert datetime.fromisoformat(value["ts"]) == message.event_time
        Decimal(value["balance_after"])
        assert Decimal(value["credit_limit"]) > 0


def test_repayments_follow_the_contract(stream: GeneratedStream) -> None:
    """Every valid repayment has the v1 fields, sane amounts and a 'Z' time; dues are at 00:00Z."""
    for message in (m for m in stream.messages if m.stream == REPAYMENTS and not m.malformed):
        value = orjson.loads(message.value)
        assert value.keys() >= REPAYMENT_FIELDS
        assert value["schema_version"] == 1
        assert value["type"] in {"due", "payment", "reversal"}
        assert isinstance(value["instalment_no"], int)
        assert Decimal(value["amount_due"]) > 0
        assert value["ts"].endswith("Z")
        assert datetime.fromisoformat(value["ts"]) == message.event_time
        if value["type"] == "due":
            assert value["amount_paid"] == "0.00"
            assert value["ts"] == f"{value['due_date']}T00:00:00Z"
        else:
            assert Decimal(value["amount_paid"]) > 0


def test_exactly_the_requested_malformed_messages_on_both_streams(stream: GeneratedStream) -> None:
    """`malformed=9` yields nine flagged messages, all different, on both streams, keyed."""
    bad = [m for m in stream.messages if m.malformed]
    assert len(bad) == 9
    assert {m.stream for m in bad} == {TRANSACTIONS, REPAYMENTS}
    assert len({m.value for m in bad}) == 9
    assert all(m.key.decode() in stream.truth for m in bad)
    assert sum(1 for m in generate(customers=5, days=20, malformed=0).messages if m.malformed) == 0


def test_malformed_messages_do_not_pass_as_contract_events(stream: GeneratedStream) -> None:
    """Each malformed message fails the contract: not a JSON object, or one field is wrong."""
    for message in (m for m in stream.messages if m.malformed):
        try:
            value = orjson.loads(message.value)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(value, dict):
            continue
        amount = value.get("amount", value.get("amount_paid"))
        assert (
            "customer_id" not in value
            or value["schema_version"] != 1
            or not isinstance(amount, str)
            or amount.startswith("-")
            or value.get("direction", "debit") not in {"debit", "credit"}
            or value.get("type", "due") not in {"due", "payment", "reversal"}
            or not value["ts"].endswith("Z")
            or not _parses(value["ts"])
        ), value


def _parses(ts: str) -> bool:
    try:
        datetime.fromisoformat(ts)
    except ValueError:
        return False
    return True


def test_messages_are_sorted_by_event_time(stream: GeneratedStream) -> None:
    """Event times never go backwards, are UTC, and lie within the period."""
    times = [m.event_time for m in stream.messages]
    assert times == sorted(times)
    assert all(t.tzinfo is not None and t.utcoffset() == timedelta(0) for t in times)
    assert times[0] >= datetime(2025, 1, 1, tzinfo=UTC)
    assert times[-1] < datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=DAYS)


def test_event_rate_is_two_to_four_per_customer_day(stream: GeneratedStream) -> None:
    """The stream carries roughly 2-4 events per customer per day."""
    assert 2 <= len(stream.messages) / (100 * DAYS) <= 4


def test_deteriorating_customers_reach_30_dpd_as_recomputed(stream: GeneratedStream) -> None:
    """The share deteriorates, all reach 30+ DPD, and the truth matches a brute-force recount."""
    daily = dpd_by_day(valid_values(stream, REPAYMENTS))
    deteriorating = [t for t in stream.truth.values() if t.deteriorates]
    assert len(deteriorating) == 20
    assert any(t.first_90dpd is not None for t in deteriorating)
    for truth in stream.truth.values():
        assert truth.first_30dpd == first_day_at(daily[truth.customer_id], 30)
        assert truth.first_90dpd == first_day_at(daily[truth.customer_id], 90)
    for truth in deteriorating:
        assert truth.onset is not None and truth.first_30dpd is not None
        assert truth.onset.date() < truth.first_30dpd


def test_deterioration_shows_in_transactions_before_30_dpd(stream: GeneratedStream) -> None:
    """After onset, deteriorating customers gamble, take cash advances and get debits returned."""
    signals: dict[str, set[str]] = defaultdict(set)
    for value in valid_values(stream, TRANSACTIONS):
        if value.get("mcc") == "7995":
            signals[value["customer_id"]].add("gambling")
        if value["channel"] == "cash_advance":
            signals[value["customer_id"]].add("cash_advance")
        if value["status"] == "returned":
            signals[value["customer_id"]].add("returned")
    for truth in stream.truth.values():
        if truth.deteriorates:
            assert signals[truth.customer_id] >= {"gambling", "cash_advance"}
        else:
            assert not signals[truth.customer_id] & {"gambling", "cash_advance"}


def test_healthy_customers_are_never_more_than_three_days_late(stream: GeneratedStream) -> None:
    """A customer who does not deteriorate never has an unpaid due older than three days."""
    daily = dpd_by_day(valid_values(stream, REPAYMENTS))
    healthy = [t for t in stream.truth.values() if not t.deteriorates]
    assert len(healthy) == 80
    for truth in healthy:
        assert max(daily[truth.customer_id].values()) <= 3
        assert truth.first_30dpd is None and truth.first_90dpd is None


def test_malformed_messages_do_not_change_the_truth() -> None:
    """The truth is the same whatever the number of malformed messages."""
    clean = generate(customers=20, days=90, malformed=0)
    dirty = generate(customers=20, days=90, malformed=12)
    assert clean.truth == dirty.truth
    assert [m for m in dirty.messages if not m.malformed] == clean.messages


def test_jsonl_files_round_trip(stream: GeneratedStream, tmp_path: Path) -> None:
    """The JSONL dumps hold one object per message and per customer, values intact."""
    to_jsonl(stream, tmp_path / "messages.jsonl")
    truth_to_jsonl(stream, tmp_path / "truth.jsonl")
    lines = (tmp_path / "messages.jsonl").read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]
    assert len(records) == len(stream.messages)
    for record, message in zip(records, stream.messages, strict=True):
        assert record["stream"] == message.stream
        assert record["key"].encode() == message.key
        assert record["value"].encode() == message.value
        assert record["malformed"] == message.malformed
    truths = [orjson.loads(line) for line in (tmp_path / "truth.jsonl").read_bytes().splitlines()]
    assert len(truths) == 100
    first = stream.truth[truths[0]["customer_id"]]
    assert truths[0]["first_30dpd"] == (first.first_30dpd and first.first_30dpd.isoformat())


def test_a_thousand_customers_over_half_a_year_is_quick() -> None:
    """1000 customers x 180 days (~400k messages) generate in bounded, linear-ish time."""
    began = time.process_time()
    result = generate(customers=1000, days=180)
    elapsed = time.process_time() - began
    assert len(result.messages) > 300_000
    # ~3-5 s on an idle laptop, 8-12 s of CPU on the shared, busy 2-core box; the bound catches
    # accidental quadratic work without flaking under load.
    assert elapsed < 45, f"took {elapsed:.1f}s of CPU"
