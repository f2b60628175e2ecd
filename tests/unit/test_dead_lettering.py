"""Dead letters once each, whatever crash splits the note from the letter.

The writer's protocol is run against a letter box in memory (the broker's part, delivery, is
exercised by the reliability tests that kill workers); a crash is a send that raises, after
which the same messages are redelivered, as Kafka does from the committed offset."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError

from streams.applier import Write
from streams.dead_lettering import Coordinates, DeadLetterWriter, Note, note_key
from streams.records import DecodeError, ErrorCode


class Crash(Exception):
    pass


class MemoryBox:
    def __init__(self, partitions: int = 2) -> None:
        self.logs: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
        self.reads = 0
        self.crash_next_send = False

    async def partitions(self) -> int:
        return len(self.logs)

    async def start(self, partition: int) -> int:
        return len(self.logs[partition])

    async def sources(self, partition: int, start: int) -> set[Coordinates]:
        self.reads += 1
        letters = [orjson.loads(value) for value in self.logs[partition][start:]]
        return {(letter["topic"], letter["partition"], letter["offset"]) for letter in letters}

    async def send(self, partition: int, letters: list[tuple[bytes | None, bytes]]) -> None:
        if self.crash_next_send:
            self.crash_next_send = False
            raise Crash
        self.logs[partition].extend(value for _, value in letters)

    async def close(self) -> None:
        pass

    def coordinates(self) -> list[Coordinates]:
        letters = [orjson.loads(v) for log in self.logs.values() for v in log]
        return sorted((lt["topic"], lt["partition"], lt["offset"]) for lt in letters)


class Notes:
    """The table's dead-letter notes; ``crash_after_save`` crashes once the notes are
    delivered (so the letters are never sent)."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.crash_after_save = False

    async def save(self, writes: list[Write]) -> None:
        for write in writes:
            assert write.value is not None
            self.data[write.key] = write.value
        if self.crash_after_save:
            self.crash_after_save = False
            raise Crash


def bad(topic: str, partition: int, offset: int) -> tuple[Any, DecodeError]:
    message = SimpleNamespace(
        topic=topic, partition=partition, offset=offset, key=b"c1", value=b"{not json"
    )
    return message, DecodeError(ErrorCode.NOT_JSON, "not JSON")


def writer(box: MemoryBox, notes: Notes) -> DeadLetterWriter:
    return DeadLetterWriter(box, notes.data.get, notes.save, max_message_bytes=1024)


def run(writer: DeadLetterWriter, items: list[tuple[Any, DecodeError]]) -> tuple[int, int]:
    outcome = asyncio.run(writer.write(items))
    return outcome.written, outcome.skipped


def test_each_bad_message_is_written_once_and_a_redelivery_skipped() -> None:
    box, notes = MemoryBox(), Notes()
    w = writer(box, notes)
    items = [bad("tx", 0, 5), bad("tx", 0, 9), bad("rp", 1, 3)]
    assert run(w, items) == (3, 0)
    assert run(w, items) == (0, 3)  # redelivered after a crash before the commit
    assert box.coordinates() == [("rp", 1, 3), ("tx", 0, 5), ("tx", 0, 9)]


def test_a_crash_between_note_and_letter_neither_loses_nor_duplicates() -> None:
    box, notes = MemoryBox(), Notes()
    w = writer(box, notes)
    notes.crash_after_save = True
    with pytest.raises(Crash):
        run(w, [bad("tx", 0, 5), bad("tx", 0, 9)])
    assert box.coordinates() == []  # the note says "may have", the topic says "not"
    assert run(w, [bad("tx", 0, 5), bad("tx", 0, 9)]) == (2, 0)
    assert run(w, [bad("tx", 0, 5), bad("tx", 0, 9)]) == (0, 2)
    assert box.coordinates() == [("tx", 0, 5), ("tx", 0, 9)]


def test_a_crash_while_sending_letters_in_doubt_is_settled_by_the_next_delivery() -> None:
    box, notes = MemoryBox(), Notes()
    w = writer(box, notes)
    notes.crash_after_save = True
    with pytest.raises(Crash):
        run(w, [bad("tx", 0, 5)])
    box.crash_next_send = True
    with pytest.raises(Crash):
        run(w, [bad("tx", 0, 5)])
    assert run(w, [bad("tx", 0, 5), bad("tx", 0, 7)]) == (2, 0)
    assert box.coordinates() == [("tx", 0, 5), ("tx", 0, 7)]


def test_a_new_intent_confirms_the_old_and_confirmed_offsets_need_no_reading() -> None:
    box, notes = MemoryBox(), Notes()
    w = writer(box, notes)
    run(w, [bad("tx", 0, 5)])
    run(w, [bad("tx", 0, 9)])
    note = Note.decode(notes.data[note_key("tx", 0)])
    assert (note.confirmed, note.intent) == (5, 9)
    reads = box.reads
    assert run(w, [bad("tx", 0, 5)]) == (0, 1)
    assert box.reads == reads  # at or below confirmed: skipped without asking the topic
    assert run(w, [bad("tx", 0, 9)]) == (0, 1)
    assert box.reads == reads + 1


def test_sources_sharing_a_dead_letter_partition_keep_their_own_notes() -> None:
    box, notes = MemoryBox(partitions=1), Notes()
    w = writer(box, notes)
    assert run(w, [bad("tx", 0, 4), bad("rp", 0, 4), bad("tx", 1, 4)]) == (3, 0)
    assert run(w, [bad("rp", 0, 4), bad("tx", 1, 4), bad("tx", 1, 6)]) == (1, 2)
    assert box.coordinates() == [("rp", 0, 4), ("tx", 0, 4), ("tx", 1, 4), ("tx", 1, 6)]


def test_a_note_from_before_intents_still_skips_what_it_covers() -> None:
    box, notes = MemoryBox(), Notes()
    notes.data[note_key("tx", 0)] = b"12"
    w = writer(box, notes)
    assert run(w, [bad("tx", 0, 12), bad("tx", 0, 13)]) == (1, 1)
    assert box.coordinates() == [("tx", 0, 13)]
    assert box.reads == 0


def test_a_broker_error_is_retried_and_writes_nothing_twice() -> None:
    """Sends that deliver and then time out (the answer lost) are retried until one goes
    through; each letter is on the topic once."""
    box, notes = MemoryBox(), Notes()
    flaky = LostAnswers(box, failures=2)
    w = DeadLetterWriter(flaky, notes.data.get, notes.save, max_message_bytes=1024, retry_max_s=0)
    written, skipped = run(w, [bad("tx", 0, 5), bad("rp", 1, 2)])
    assert flaky.failures == 0 and written + skipped == 2
    assert box.coordinates() == [("rp", 1, 2), ("tx", 0, 5)]
    assert run(w, [bad("tx", 0, 5), bad("rp", 1, 2)]) == (0, 2)


class LostAnswers:
    """A letter box whose first ``failures`` sends deliver their letters, then fail, as a
    produce whose answer timed out does."""

    def __init__(self, inner: MemoryBox, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    async def partitions(self) -> int:
        return await self.inner.partitions()

    async def start(self, partition: int) -> int:
        return await self.inner.start(partition)

    async def sources(self, partition: int, start: int) -> set[Coordinates]:
        return await self.inner.sources(partition, start)

    async def send(self, partition: int, letters: list[tuple[bytes | None, bytes]]) -> None:
        await self.inner.send(partition, letters)
        if self.failures:
            self.failures -= 1
            raise KafkaTimeoutError()

    async def close(self) -> None:
        pass


def test_a_message_twice_in_one_batch_is_written_once() -> None:
    """Around a rebalance a fetched message can reach the merge twice."""
    box, notes = MemoryBox(), Notes()
    w = writer(box, notes)
    assert run(w, [bad("rp", 0, 347), bad("tx", 0, 2), bad("rp", 0, 347)]) == (2, 1)
    assert box.coordinates() == [("rp", 0, 347), ("tx", 0, 2)]
