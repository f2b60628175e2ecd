"""The bank simulator: deterministic, on contract, and truthful about who defaults."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.simulator import (
    OUTCOMES,
    PATHS,
    PROFILES,
    REPAYMENTS,
    TRANSACTIONS,
    GeneratedStream,
    Simulation,
    generate,
    is_payday,
    simulate,
    to_jsonl,
    truth_to_jsonl,
)

START = date(2025, 1, 1)
DAYS = 300

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
    return generate(
        customers=200, days=DAYS, seed=7, deteriorating_share=0.4, malformed=9, start=START
    )


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
            owed: dict[tuple[str, int], tuple[date, Decimal]] = {}
            paid: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
            for event in events:
                if date.fromisoformat(event["ts"][:10]) > day:
                    continue
                number = (event["loan_id"], event["instalment_no"])
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
    ids = [
        v["event_id"]
        for name in (TRANSACTIONS, REPAYMENTS, OUTCOMES)
        for v in valid_values(stream, name)
    ]
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
        if value["account_id"].startswith("acct-"):  # card accounts carry no balance
            Decimal(value["balance_after"])
            assert Decimal(value["credit_limit"]) >= 0


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


def test_event_rate_is_about_one_per_customer_day(stream: GeneratedStream) -> None:
    """About a card payment a day plus the month's income, bills and loans: 0.7-1.5 a day."""
    assert 0.7 <= len(stream.messages) / (200 * DAYS) <= 1.5


def test_every_profile_and_path_occurs(stream: GeneratedStream) -> None:
    """Salaried, self-employed, students and retired; all four deterioration paths."""
    assert {t.profile for t in stream.truth.values()} == set(PROFILES)
    assert {t.path for t in stream.truth.values() if t.deteriorates} == set(PATHS)


def test_truth_matches_a_brute_force_recount_of_days_past_due(stream: GeneratedStream) -> None:
    """First 30+ and 90+ DPD days in the truth are those the emitted repayments give, over all
    of a customer's loans; only deteriorating customers get there, after their onset."""
    daily = dpd_by_day(valid_values(stream, REPAYMENTS))
    bad = [t for t in stream.truth.values() if t.first_30dpd is not None]
    assert len(bad) >= 10 and any(t.first_90dpd is not None for t in bad)
    for truth in stream.truth.values():
        days = daily.get(truth.customer_id, {})
        assert truth.first_30dpd == first_day_at(days, 30)
        assert truth.first_90dpd == first_day_at(days, 90)
    for truth in bad:
        if truth.deteriorates:
            assert truth.onset is not None and truth.onset.date() < truth.first_30dpd


def test_the_bank_declares_a_default_at_90_dpd(stream: GeneratedStream) -> None:
    """A ``default`` outcome on the day a customer first reaches 90 DPD, and only then."""
    declared = {
        v["customer_id"]: v["ts"][:10]
        for v in valid_values(stream, OUTCOMES)
        if v["outcome"] == "default"
    }
    expected = {
        t.customer_id: t.first_90dpd.isoformat()
        for t in stream.truth.values()
        if t.first_90dpd is not None
    }
    assert declared == expected and declared


def test_deterioration_shows_in_the_account_before_30_dpd(stream: GeneratedStream) -> None:
    """Before their first 30+ DPD, most customers who get there show returned debits, an
    overdraft, cash advances or gambling; customers who do not deteriorate never gamble or take
    cash advances."""
    signals: dict[str, set[str]] = defaultdict(set)
    first_30 = {t.customer_id: t.first_30dpd for t in stream.truth.values()}
    for value in valid_values(stream, TRANSACTIONS):
        customer = value["customer_id"]
        bad_day = first_30[customer]
        if bad_day is not None and date.fromisoformat(value["ts"][:10]) >= bad_day:
            continue
        if value.get("mcc") == "7995" or value["channel"] == "cash_advance":
            signals[customer].add("gambling_or_cash")
        if value["status"] == "returned" or value.get("balance_after", "0").startswith("-"):
            signals[customer].add("short")
    bad = [c for c, day in first_30.items() if day is not None]
    assert sum(1 for c in bad if signals[c]) >= 0.8 * len(bad)
    for truth in stream.truth.values():
        if not truth.deteriorates:
            assert "gambling_or_cash" not in signals[truth.customer_id]


def test_healthy_customers_pay_however_their_pay_day_falls(stream: GeneratedStream) -> None:
    """Weekend and holiday pay-day shifts, December bonuses, summer travel and large purchases
    leave customers who do not deteriorate clear of 30 DPD (a self-employed customer's rare
    two-month drought of client payments aside: at most 1 %) and of 90 DPD."""
    healthy = [t for t in stream.truth.values() if not t.deteriorates]
    assert len(healthy) >= 100
    assert sum(1 for t in healthy if t.first_30dpd is not None) <= 0.01 * len(healthy)
    assert all(t.first_90dpd is None for t in healthy)
    travel = {
        v["customer_id"] for v in valid_values(stream, TRANSACTIONS) if v.get("mcc") == "4511"
    }
    assert travel & {t.customer_id for t in healthy}


def test_pay_moves_to_the_business_day_before_a_weekend_or_holiday() -> None:
    """Pay due on Saturday 1 Feb 2025 comes on Friday 31 Jan; 1 Jan (a holiday) on 31 Dec."""
    assert is_payday(date(2025, 1, 31), 1) and not is_payday(date(2025, 2, 1), 1)
    assert is_payday(date(2024, 12, 31), 1) and not is_payday(date(2025, 1, 1), 1)
    assert is_payday(date(2025, 3, 14), 14)
    assert sum(is_payday(START + timedelta(days=d), 1) for d in range(365)) == 12


def test_malformed_messages_do_not_change_the_truth() -> None:
    """The truth and the valid messages are the same whatever the number of malformed ones."""
    clean = generate(customers=20, days=90, malformed=0)
    dirty = generate(customers=20, days=90, malformed=12)
    assert clean.truth == dirty.truth
    assert [m for m in dirty.messages if not m.malformed] == clean.messages


def test_a_malformed_share_breaks_about_that_share() -> None:
    """``malformed_share`` 0.01 gives about 1 % broken messages, on both input streams."""
    truth: dict[str, object] = {}
    messages = list(simulate(Simulation(customers=50, days=120, malformed_share=0.01), truth))  # type: ignore[arg-type]
    bad = [m for m in messages if m.malformed]
    assert 0.005 <= len(bad) / len(messages) <= 0.02
    assert {m.stream for m in bad} == {TRANSACTIONS, REPAYMENTS}


def test_jsonl_files_round_trip(stream: GeneratedStream, tmp_path: Path) -> None:
    """The JSONL dumps hold one object per message and per customer, values intact."""
    to_jsonl(stream.messages, tmp_path / "messages.jsonl")
    truth_to_jsonl(stream.truth, tmp_path / "truth.jsonl")
    lines = (tmp_path / "messages.jsonl").read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]
    assert len(records) == len(stream.messages)
    for record, message in zip(records, stream.messages, strict=True):
        assert record["stream"] == message.stream
        assert record["key"].encode() == message.key
        assert record.get("value", "").encode() == message.value or "value_b64" in record
        assert record["malformed"] == message.malformed
    truths = [orjson.loads(line) for line in (tmp_path / "truth.jsonl").read_bytes().splitlines()]
    assert len(truths) == 200
    first = stream.truth[truths[0]["customer_id"]]
    assert truths[0]["first_30dpd"] == (first.first_30dpd and first.first_30dpd.isoformat())


def test_a_thousand_customers_over_half_a_year_is_quick() -> None:
    """1000 customers x 180 days (~180k messages) generate in bounded, linear-ish time."""
    began = time.process_time()
    result = generate(customers=1000, days=180)
    elapsed = time.process_time() - began
    assert len(result.messages) > 120_000
    # ~6 s of CPU here; the bound catches accidental quadratic work without flaking under load.
    assert elapsed < 60, f"took {elapsed:.1f}s of CPU"
