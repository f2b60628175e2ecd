"""The trainer learns each matured label once, whoever sends it again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from detectors.labels import LabelledExample
from detectors.model import OnlineRiskModel
from streams.trainer import STATE_KEY, Trainer

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _raw(customer_id: str, day: int, label: bool) -> bytes:
    snapshot = T0 + timedelta(days=day)
    example = LabelledExample(
        snapshot_ts=snapshot,
        matured_ts=snapshot + timedelta(days=90),
        features={"dpd": float(day % 7), "utilisation": 0.5},
        label=label,
    )
    return orjson.dumps({**example.to_dict(), "customer_id": customer_id})


def _labels(trainer: Trainer) -> int:
    return OnlineRiskModel.from_state(orjson.loads(trainer.state_table[STATE_KEY])).n_labels


def test_a_label_sent_again_after_a_restart_is_learned_once() -> None:
    """A restarted worker re-applies its uncommitted events and sends their labels again."""
    trainer = Trainer(state_table={}, model_table={}, publish_every=1000)
    first = [_raw("c1", 0, False), _raw("c2", 0, True), _raw("c1", 7, False)]
    for raw in first:
        trainer.learn(raw)
    for raw in [first[2], _raw("c1", 14, True), first[1]]:  # redelivered, one new, redelivered
        trainer.learn(raw)
    assert _labels(trainer) == 4
    assert trainer.duplicates == 2


def test_the_same_snapshot_time_for_two_customers_is_two_labels() -> None:
    trainer = Trainer(state_table={}, model_table={}, publish_every=1000)
    trainer.learn(_raw("c1", 3, False))
    trainer.learn(_raw("c2", 3, False))
    assert _labels(trainer) == 2 and trainer.duplicates == 0


def test_an_example_without_customer_is_rejected() -> None:
    trainer = Trainer(state_table={}, model_table={}, publish_every=1000)
    record = orjson.loads(_raw("c1", 0, False))
    del record["customer_id"]
    trainer.learn(orjson.dumps(record))
    assert trainer.rejected == 1 and STATE_KEY not in trainer.state_table


def test_human_labels_are_deduplicated_apart_and_counted_apart() -> None:
    """A person's label is stamped later than the snapshots still maturing for the customer:
    it must not make the trainer skip them, and is learned once itself."""
    trainer = Trainer(state_table={}, model_table={}, publish_every=1000)
    human = LabelledExample(
        snapshot_ts=T0 + timedelta(days=60),
        matured_ts=T0 + timedelta(days=61),
        features={"dpd": 3.0},
        label=True,
        human=True,
    )
    raw_human = orjson.dumps({**human.to_dict(), "customer_id": "c1"})
    trainer.learn(raw_human)
    trainer.learn(_raw("c1", 10, False))  # an older snapshot matures after the answer
    trainer.learn(raw_human)  # redelivered
    model = OnlineRiskModel.from_state(orjson.loads(trainer.state_table[STATE_KEY]))
    assert model.n_labels == 2 and trainer.duplicates == 1
    assert model.params("v").n_human_labels == 1


def test_the_model_kept_in_memory_learns_exactly_as_one_restored_for_every_example() -> None:
    kept = Trainer(state_table={}, model_table={}, publish_every=1000)
    restored_table: dict[bytes, bytes] = {}
    examples = [_raw(f"c{n % 5}", n, n % 3 == 0) for n in range(40)]
    for raw in examples:
        kept.learn(raw)
        Trainer(state_table=restored_table, model_table={}, publish_every=1000).learn(raw)
    assert kept.state_table[STATE_KEY] == restored_table[STATE_KEY]


def test_a_model_another_trainer_wrote_since_is_restored_not_the_one_in_memory() -> None:
    """After partitions moved away and back, the table holds what the other worker learned."""
    table: dict[bytes, bytes] = {}
    first = Trainer(state_table=table, model_table={}, publish_every=1000)
    first.learn(_raw("c1", 0, False))
    Trainer(state_table=table, model_table={}, publish_every=1000).learn(_raw("c2", 0, True))
    first.learn(_raw("c3", 0, False))
    assert _labels(first) == 3
