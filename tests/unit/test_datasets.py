"""The Taiwan converter: wire contracts, days past due matching PAY_x, order and determinism."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from config.settings import Topics
from detectors.repayment import DaysPastDue
from streams.datasets import (
    MONTH,
    MONTHS,
    REQUIRED,
    DatasetError,
    april_first,
    customer_messages,
    read_taiwan,
    write_taiwan,
)
from streams.merge import merge_key
from streams.records import decode, decoders
from streams.replay import read_recording

TOPICS = Topics()
DECODERS = decoders(TOPICS)

# PAY (April..September), chosen to include consistent runs, jumps, cures and every code.
PAYS = [
    (-2, -2, -1, -1, 2, 2),
    (2, 0, 0, 0, 0, -1),
    (0, 0, 0, 0, 0, 0),
    (-1, 0, 2, 3, 4, 5),
    (8, 7, 6, 5, 4, 3),
    (0, 2, 0, 1, -2, 1),
    (9, 9, 9, 9, 9, 9),
]


def _row(i: int, pays: tuple[int, ...]) -> dict[str, str]:
    row = {"ID": str(i), "LIMIT_BAL": str(10_000 * i), "default.payment.next.month": str(i % 2)}
    for column, pay in zip(
        ("PAY_6", "PAY_5", "PAY_4", "PAY_3", "PAY_2", "PAY_0"), pays, strict=True
    ):
        row[column] = str(pay)
    for n in range(1, 7):
        row[f"BILL_AMT{n}"] = str(-200 if (i + n) % 5 == 0 else 1_000 * n + i)
        row[f"PAY_AMT{n}"] = str(0 if (i + n) % 3 == 0 else 100 * n)
    return row


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=[*REQUIRED, "SEX"])
        writer.writeheader()
        for row in rows:
            writer.writerow({"SEX": "1", **row})
    return path


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "sample.csv", [_row(i + 1, p) for i, p in enumerate(PAYS)])


def test_days_past_due_match_pay_at_every_month_end(sample: Path) -> None:
    """At the end of each month the repayments give exactly 30 days per month of delay."""
    for order, row in enumerate(read_taiwan(sample)):
        messages = customer_messages(row, order)
        signal, i = DaysPastDue(), 0
        for month in range(MONTHS):
            end = april_first(order) + (month + 1) * MONTH
            while i < len(messages) and messages[i].ts < end:
                if messages[i].stream == "repayments":
                    event = DECODERS[TOPICS.repayments](messages[i].value)
                    signal.learn_one(event)
                i += 1
            assert signal.days_past_due(end) == 30 * max(row.pay[month], 0), (row.id, month)


def test_recording_decodes_in_merge_order_with_counts(sample: Path, tmp_path: Path) -> None:
    """Every line decodes under the contracts, in (time, topic rank, event_id) order, and the
    counts and truth file agree with the rows."""
    out, truth = tmp_path / "rec.jsonl", tmp_path / "truth.jsonl"
    counts = write_taiwan(sample, out, truth, seed=3)
    names = {TOPICS.transactions, TOPICS.repayments, TOPICS.outcomes}
    keys = []
    for message in read_recording(out, TOPICS):
        assert message.topic in names
        event = decode(DECODERS[message.topic], message.value, message.key, 64 * 1024)
        keys.append(merge_key(event))
    assert keys == sorted(keys)
    assert len(keys) == counts["transactions"] + counts["repayments"] + counts["outcomes"]
    records = [orjson.loads(line) for line in truth.read_bytes().splitlines()]
    assert counts["customers"] == len(records) == len(PAYS)
    assert counts["defaults"] == sum(r["default"] for r in records)
    assert counts["outcomes"] == counts["customers"]
    for record in records:
        assert datetime.fromisoformat(record["evaluate_at"]) < datetime.now().astimezone()


def test_same_seed_same_bytes_other_seed_other_order(sample: Path, tmp_path: Path) -> None:
    """The seed alone decides the output."""
    paths = [tmp_path / f"{n}.jsonl" for n in range(3)]
    for path, seed in zip(paths, (7, 7, 8), strict=True):
        write_taiwan(sample, path, path.with_suffix(".truth"), seed=seed)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_each_customer_gets_one_outcome_at_evaluation(sample: Path) -> None:
    """At the shifted 1 October a defaulter's default is declared and a non-defaulter's account
    is closed: the file observes no one after it."""
    for order, row in enumerate(read_taiwan(sample)):
        outcomes = [m for m in customer_messages(row, order) if m.stream == "outcomes"]
        assert [m.value["outcome"] for m in outcomes] == ["default" if row.default else "closed"]
        assert outcomes[0].ts == april_first(order) + MONTHS * MONTH


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [("PAY_2", "12", "PAY_2"), ("BILL_AMT3", "abc", "BILL_AMT3"), ("LIMIT_BAL", "0", "LIMIT_BAL")],
)
def test_bad_rows_name_line_and_column(
    tmp_path: Path, column: str, value: str, needle: str
) -> None:
    """A bad value raises DatasetError naming the line and the column."""
    rows = [_row(1, PAYS[0]), {**_row(2, PAYS[1]), column: value}]
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DatasetError, match=rf"bad.csv:3: column {needle}"):
        list(read_taiwan(path))


def test_missing_column_is_named(tmp_path: Path) -> None:
    """A file without a required column is refused before any row."""
    path = tmp_path / "short.csv"
    path.write_text("ID,LIMIT_BAL\n1,1000\n")
    with pytest.raises(DatasetError, match="missing column"):
        list(read_taiwan(path))
