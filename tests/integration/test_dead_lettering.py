"""The dead-letter writer on a real broker: a crash after the note and before the letters, then
redelivery, leaves each letter on the topic once; letters in doubt are found by reading the topic
from the note's start, past what other sources wrote there since."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from config.settings import Settings
from streams.dead_lettering import DeadLetterWriter, KafkaLetterBox
from streams.localstack import ApacheKafka
from streams.topics import ensure_topics
from tests.support import dead_letters, isolated_settings
from tests.unit.test_dead_lettering import Crash, Notes, bad

pytestmark = pytest.mark.kafka


def test_letters_in_doubt_are_read_back_from_the_broker_and_written_once(
    kafka: ApacheKafka,
) -> None:
    settings = isolated_settings(kafka.bootstrap, "redis://unused", partitions=2)
    asyncio.run(_crash_and_redeliver(settings))
    letters = dead_letters(settings)
    got = sorted((d["topic"], d["partition"], d["offset"]) for d in letters)
    assert got == [("rp", 0, 1), ("tx", 0, 3), ("tx", 0, 8), ("tx", 1, 2), ("tx", 2, 5)]
    by_source = {(d["topic"], d["partition"]): d for d in letters}
    assert by_source[("tx", 2)]["offset"] == 5  # partition 2 of the input: letter partition 0


async def _crash_and_redeliver(settings: Settings) -> None:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    box = KafkaLetterBox(settings, lambda: producer)
    notes = Notes()
    writer = DeadLetterWriter(box, notes.data.get, notes.save, max_message_bytes=1024)
    try:
        assert await _write(writer, [bad("tx", 0, 3), bad("tx", 1, 2)]) == (2, 0)
        notes.crash_after_save = True
        with pytest.raises(Crash):
            await writer.write([bad("tx", 0, 8)])
        # meanwhile another source writes to the same letter partition (2 % 2 == 0)
        assert await _write(writer, [bad("tx", 2, 5)]) == (1, 0)
        again = [bad("tx", 0, 3), bad("tx", 0, 8), bad("rp", 0, 1)]
        assert await _write(writer, again) == (2, 1)
        assert await _write(writer, again) == (0, 3)
    finally:
        await writer.close()
        await producer.stop()


async def _write(writer: DeadLetterWriter, items: list[tuple[Any, Any]]) -> tuple[int, int]:
    outcome = await writer.write(items)
    return outcome.written, outcome.skipped
