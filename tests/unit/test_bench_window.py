"""When ``ews bench`` starts timing two workers: both in the latest group generation, both with
their tables restored since it (their logs say so)."""

from __future__ import annotations

from pathlib import Path

from streams.bench import settled

ASSIGNED = "[INFO] Executing _on_partitions_assigned\n[INFO] generation id {} app consumers id {}\n"
READY = "[INFO] [^---Recovery]: Worker ready\n"


def logs(tmp_path: Path, *texts: str) -> list[Path]:
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / f"worker-{i}.log"
        path.write_text(text)
        paths.append(path)
    return paths


def gen(n: int) -> str:
    return ASSIGNED.format(n, n)


def test_one_worker_is_timed_from_its_first_commit(tmp_path: Path) -> None:
    assert settled(logs(tmp_path, ""))


def test_two_workers_ready_in_the_same_generation(tmp_path: Path) -> None:
    first = gen(1) + READY + gen(2) + READY
    second = gen(2) + READY
    assert settled(logs(tmp_path, first, second))


def test_a_worker_still_restoring_its_tables_holds_the_window(tmp_path: Path) -> None:
    first = gen(1) + READY + gen(2)  # the handover gave it partitions it has not restored yet
    second = gen(2) + READY
    assert not settled(logs(tmp_path, first, second))


def test_ready_before_the_latest_generation_does_not_count(tmp_path: Path) -> None:
    first = gen(1) + READY + gen(2) + READY + gen(3)
    second = gen(3) + READY
    assert not settled(logs(tmp_path, first, second))


def test_workers_in_different_generations(tmp_path: Path) -> None:
    first = gen(1) + READY
    second = gen(2) + READY
    assert not settled(logs(tmp_path, first, second))


def test_a_worker_not_yet_assigned_or_without_a_log(tmp_path: Path) -> None:
    assert not settled(logs(tmp_path, gen(1) + READY, "[INFO] starting\n"))
    assert not settled([*logs(tmp_path, gen(1) + READY), tmp_path / "missing.log"])
