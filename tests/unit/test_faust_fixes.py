"""Faust's commit bookkeeping with the fixes of ``streams.faust_fixes`` installed."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from intervaltree import IntervalTree

from streams import faust_fixes

TP = ("t", 0)


def consumer(acked: list[int], committed: int | None) -> Any:
    return SimpleNamespace(
        _acked=defaultdict(list, {TP: list(acked)}),
        _acked_index=defaultdict(set, {TP: set(acked)}),
        _committed_offset=defaultdict(lambda: None, {TP: committed}),
        _gap=defaultdict(IntervalTree),
    )


def test_duplicated_acks_commit_the_whole_run_at_once() -> None:
    """Every offset acked twice: one commit covers the run, not one offset per commit."""
    faust_fixes.install()
    offsets = [o for o in range(258, 300) for _ in range(2)]
    c = consumer(offsets, committed=258)
    assert faust_fixes._new_offset_without_duplicates(c, TP) == 300


def test_stale_acks_below_the_committed_offset_are_ignored() -> None:
    """Old duplicates below the committed offset neither block nor rewind the commit."""
    c = consumer([250, 251, 258, 259, 260], committed=258)
    assert faust_fixes._new_offset_without_duplicates(c, TP) == 261


def test_a_real_gap_still_blocks_the_commit() -> None:
    """An offset never acked is never committed past: the guarantee is unchanged."""
    c = consumer([261, 262, 263], committed=258)
    assert faust_fixes._new_offset_without_duplicates(c, TP) is None


def test_install_is_idempotent() -> None:
    """Installing twice leaves one patch of each in place."""
    from faust.transport.consumer import Consumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    faust_fixes.install()
    faust_fixes.install()
    assert Consumer._new_offset is faust_fixes._new_offset_without_duplicates
    assert AIOKafkaConsumerThread.seek_to_committed is faust_fixes._seek_to_committed_or_start


def test_one_unacked_offset_at_the_head_blocks_the_commit() -> None:
    """Committed 258 (next to read) and 259.. acked: 258 was never acked, so nothing is committed
    (Faust's own head check lets one unacked offset through: 259 - 258 is not > 1)."""
    c = consumer([259, 260], committed=258)
    assert faust_fixes._new_offset_without_duplicates(c, TP) is None


def test_an_unacked_head_blocks_the_commit_from_offset_zero() -> None:
    """Committed 0 is checked like any other offset (Faust skips its head check when it is 0)."""
    c = consumer([1, 2, 3], committed=0)
    assert faust_fixes._new_offset_without_duplicates(c, TP) is None


def test_never_committed_partition_waits_for_its_first_read_offset() -> None:
    """Nothing committed yet: the first offset read since the assignment is the head; a crash
    that dropped it must not be committed past."""
    c = consumer([1, 2, 3], committed=None)
    c._ews_first_read = {TP: 0}
    assert faust_fixes._new_offset_without_duplicates(c, TP) is None
    c._ews_first_read = {TP: 1}
    assert faust_fixes._new_offset_without_duplicates(c, TP) == 4


def test_a_head_covered_by_a_recorded_gap_is_committed() -> None:
    """Offsets Faust recorded as a gap (no message there) do not block the commit."""
    c = consumer([261, 262], committed=258)
    c._gap[TP].addi(258, 261)
    assert faust_fixes._new_offset_without_duplicates(c, TP) == 263
