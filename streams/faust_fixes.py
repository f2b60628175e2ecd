"""A fix for Faust's offset bookkeeping, installed once when the app is built.

Faust keeps, per partition, a list of acked offsets and commits the first run of consecutive
numbers in it (``Consumer._new_offset``). A message delivered twice (as Faust does around
recovery and rebalances, faust-streaming issue 216) can be acked twice, and a duplicate that
lands after its offset left the index stays in the list (robinhood/faust issue 559). With
duplicates the runs are one offset long, so each commit advances one offset: a restarted worker
then takes hours to commit what it processed in seconds, and a crash replays all of it.

The fix: before Faust computes the offset to commit, drop offsets below the committed one and
duplicates. Every offset still has to be acked before it is committed, so no guarantee changes.
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer

_original_new_offset = Consumer._new_offset


def _new_offset_without_duplicates(self: Any, tp: Any) -> int | None:
    acked = self._acked[tp]
    if acked:
        committed = self._committed_offset[tp]
        acked[:] = sorted({o for o in acked if committed is None or o >= committed})
    result: int | None = _original_new_offset(self, tp)
    return result


def install() -> None:
    """Idempotent: patch ``Consumer._new_offset`` once per process."""
    if Consumer._new_offset is not _new_offset_without_duplicates:
        Consumer._new_offset = _new_offset_without_duplicates  # type: ignore[method-assign]
