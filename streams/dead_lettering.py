"""Dead letters written once, across crashes and handovers, without Kafka transactions.

A dead letter goes to the dead-letter topic, and the note that it was written goes to the table's
changelog: two writes a crash can split. Written plainly in either order, a crash between them
loses the letter (note first: the redelivered message is skipped) or writes it twice (letter
first: the redelivered message finds no note). So each source partition's note is an *intent*,
delivered before its letters are sent:

``confirmed``
    every bad message of the source at or below this offset has its dead letter;
``intent``
    those above ``confirmed`` and up to this offset may have one, on dead-letter partition
    ``partition`` at or after offset ``start``.

A bad message at or below ``confirmed`` is skipped, one above ``intent`` is new. One in between
is in doubt (it was redelivered after a crash or handover), and the dead-letter topic answers:
its partition is read from ``start`` (only the letters written since that intent) and the letters
missing there are written, under the same intent (delivered again first: an attempt that failed
may have left it in the local store only). Writing a new intent confirms the old one: a
partition's messages are released in offset order, so every message up to the old intent has
been settled by then. A broker error retries the whole batch of bad messages, with backoff; the
notes make the retry write nothing twice.

Costs: a batch with new bad messages waits for two deliveries (the notes, then the letters); a
batch with messages in doubt reads a few records of the dead-letter topic first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from config.settings import Settings
from detectors.events import Source
from streams.applier import Write
from streams.changelog import produce_batches
from streams.records import DecodeError, dead_letter

log = structlog.get_logger(__name__)

Coordinates = tuple[str, int, int]  # source topic, partition, offset
Bad = tuple[Any, DecodeError]  # an input message and why it did not decode


@dataclass(frozen=True, slots=True)
class Note:
    confirmed: int
    intent: int
    partition: int = 0
    start: int = 0

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: bytes) -> Note:
        if raw.lstrip(b"-").isdigit():  # a note from before intents: the last offset written
            return cls(int(raw), int(raw))
        return cls(**orjson.loads(raw))


NOTHING = Note(confirmed=-1, intent=-1)


class LetterBox(Protocol):
    """The dead-letter topic, as the writer needs it."""

    async def partitions(self) -> int: ...

    async def start(self, partition: int) -> int:
        """An offset at or below where the next letter sent to ``partition`` will land."""
        ...

    async def sources(self, partition: int, start: int) -> set[Coordinates]:
        """The source coordinates of the letters on ``partition`` from offset ``start`` on."""
        ...

    async def send(self, partition: int, letters: list[tuple[bytes | None, bytes]]) -> None:
        """Send ``letters`` (key, value) to ``partition`` and wait until they are delivered."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Lettered:
    written: int
    skipped: int  # already dead-lettered (a redelivery)


class DeadLetterWriter:
    def __init__(
        self,
        box: LetterBox,
        note: Callable[[bytes], bytes | None],
        save_notes: Callable[[list[Write]], Awaitable[None]],
        max_message_bytes: int,
        retry_max_s: float = 10.0,
    ) -> None:
        self.box = box
        self.note = note
        self.save_notes = save_notes  # must return once the notes are delivered
        self.max_message_bytes = max_message_bytes
        self.retry_max_s = retry_max_s

    async def write(self, bad: list[Bad]) -> Lettered:
        """Dead-letter ``bad`` (message, error) once each. A broker error retries the whole, with
        backoff, until it goes through: the notes make a retry write nothing twice. (A letter
        delivered by an attempt that then failed counts as skipped.)"""
        delay = 0.1
        while True:
            try:
                return await self._write(bad)
            except KafkaError as exc:
                log.warning("dead_letters_retry", error=repr(exc)[:200], retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)

    async def _write(self, bad: list[Bad]) -> Lettered:
        by_source: dict[tuple[str, int], list[Bad]] = {}
        unique = {_coordinates(item[0]): item for item in bad}  # a message fetched twice
        for coordinates in sorted(unique):  # (around a rebalance) is written once
            by_source.setdefault(coordinates[:2], []).append(unique[coordinates])
        doubts: dict[tuple[int, int], list[Bad]] = {}
        fresh: dict[tuple[str, int], tuple[Note, list[Bad]]] = {}
        for (topic, partition), items in by_source.items():
            raw = self.note(note_key(topic, partition))
            note = NOTHING if raw is None else Note.decode(raw)
            for item in items:
                offset = item[0].offset
                if note.confirmed < offset <= note.intent:
                    doubts.setdefault((note.partition, note.start), []).append(item)
                elif offset > note.intent:
                    fresh.setdefault((topic, partition), (note, []))[1].append(item)
        missing = await self._missing(doubts)
        if missing:  # their notes may be in the store only (an attempt that failed): deliver
            notes = {(m.topic, m.partition): m for items in missing.values() for m, _ in items}
            await self.save_notes(
                [
                    Write(note_key(*place), self.note(note_key(*place)), m)
                    for place, m in notes.items()
                ]
            )
        await self._send([(partition, items) for (partition, _), items in missing.items()])
        new = await self._intend(fresh)
        await self._send(new)
        written = sum(map(len, missing.values())) + sum(len(items) for _, items in new)
        return Lettered(written=written, skipped=len(bad) - written)

    async def _missing(
        self, doubts: dict[tuple[int, int], list[Bad]]
    ) -> dict[tuple[int, int], list[Bad]]:
        """Of the messages in doubt, those whose letter is not on the dead-letter topic."""
        missing: dict[tuple[int, int], list[Bad]] = {}
        for (partition, start), items in doubts.items():
            there = await self.box.sources(partition, start)
            absent = [item for item in items if _coordinates(item[0]) not in there]
            log.info(
                "dead_letters_in_doubt",
                partition=partition,
                start=start,
                in_doubt=len(items),
                already_written=len(items) - len(absent),
            )
            if absent:
                missing[(partition, start)] = absent
        return missing

    async def _intend(
        self, fresh: dict[tuple[str, int], tuple[Note, list[Bad]]]
    ) -> list[tuple[int, list[Bad]]]:
        """Deliver the new intents; returns the new letters by their dead-letter partition."""
        writes, letters = [], []
        for (topic, partition), (old, items) in fresh.items():
            target = partition % await self.box.partitions()
            note = Note(
                confirmed=old.intent,
                intent=items[-1][0].offset,  # items in offset order
                partition=target,
                start=await self.box.start(target),
            )
            writes.append(Write(note_key(topic, partition), note.encode(), items[-1][0]))
            letters.append((target, items))
        if writes:
            await self.save_notes(writes)
        return letters

    async def _send(self, letters: list[tuple[int, list[Bad]]]) -> None:
        by_partition: dict[int, list[tuple[bytes | None, bytes]]] = {}
        for partition, items in letters:
            by_partition.setdefault(partition, []).extend(map(self._letter, items))
        await asyncio.gather(*(self.box.send(p, ls) for p, ls in by_partition.items()))
        for _, items in letters:
            for message, error in items:
                log.warning(
                    "dead_letter",
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    error_code=error.code.value,
                    error=error.message,
                )

    async def close(self) -> None:
        await self.box.close()

    def _letter(self, item: Bad) -> tuple[bytes | None, bytes]:
        message, error = item
        cap = self.max_message_bytes  # a dead letter must fit where its input did not
        source = Source(message.topic, message.partition, message.offset)
        record = dead_letter(message.value, message.key, source, error, datetime.now(UTC), cap)
        return (None if message.key is None else message.key[:cap]), record


def note_key(topic: str, partition: int) -> bytes:
    return f"\x00deadletter:{topic}:{partition}".encode()


def _coordinates(message: Any) -> Coordinates:
    return (message.topic, message.partition, message.offset)


class KafkaLetterBox:
    """The dead-letter topic on the broker: sent to by the worker's producer, read (only when
    letters are in doubt) by a consumer of no group."""

    def __init__(self, settings: Settings, producer: Callable[[], Any], read_wait_s: float = 0.5):
        self.settings = settings
        self.topic = settings.topics.deadletter
        self.producer = producer
        self.read_wait_s = read_wait_s
        self._count: int | None = None
        self._ends: dict[int, int] = {}  # lower bounds of the partitions' ends, from deliveries
        self._consumer: AIOKafkaConsumer | None = None

    async def partitions(self) -> int:
        if self._count is None:
            self._count = len(await self.producer().partitions_for(self.topic))
        return self._count

    async def start(self, partition: int) -> int:
        if partition not in self._ends:
            tp = TopicPartition(self.topic, partition)
            self._ends[partition] = (await (await self._reader()).end_offsets([tp]))[tp]
        return self._ends[partition]

    async def send(self, partition: int, letters: list[tuple[bytes | None, bytes]]) -> None:
        if not letters:
            return
        sent = await produce_batches(self.producer(), self.topic, partition, letters)
        for delivered, count in sent:
            end = (await delivered).offset + count
            self._ends[partition] = max(self._ends.get(partition, 0), end)

    async def sources(self, partition: int, start: int) -> set[Coordinates]:
        """Reads to the end; the end asked of the broker may be low (tansu answers the start of
        the last batch), so reading stops only at a fetch that brings nothing more. Three empty
        fetches in a row short of the end stop it too (said in the log): letters not found are
        written again, a duplicate rather than a loss."""
        consumer = await self._reader()
        tp = TopicPartition(self.topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        end = (await consumer.end_offsets([tp]))[tp]
        found: set[Coordinates] = set()
        empty = 0
        while empty < 3:
            fetched = await consumer.getmany(tp, timeout_ms=int(self.read_wait_s * 1000))
            records = fetched.get(tp, [])
            for record in records:
                with suppress(orjson.JSONDecodeError, KeyError, TypeError):
                    letter = orjson.loads(record.value)
                    found.add((letter["topic"], letter["partition"], letter["offset"]))
            if records:
                empty = 0
                continue
            if await consumer.position(tp) >= end:
                return found
            empty += 1
        log.warning("dead_letter_topic_short_of_its_end", partition=partition, end=end)
        return found

    async def _reader(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap,
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # a start retention deleted: from the first kept
                **self.settings.kafka_client_options(),
            )
            await self._consumer.start()
        return self._consumer

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
