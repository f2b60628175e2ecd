"""Coverage-guided fuzzing of the input decoders with atheris (libFuzzer), as a program.

    python -m tests.reliability.fuzz_decoders -runs=20000 CORPUS_DIR

Each input is one message: its first byte picks the topic, the rest is the value (keyed by the
customer id it claims, when it claims one). Through ``decode`` and ``dead_letter``, as the worker
reads a message, anything raised but ``DecodeError`` is a crash, and so is a dead letter without a
known reason or without its original bytes. ``tests/reliability/test_decoder_fuzz.py`` runs it
for a bounded number of inputs from a corpus of simulator messages, where atheris is installed.
"""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime

import orjson

from config.settings import Topics
from detectors.events import Source
from streams.records import DecodeError, ErrorCode, dead_letter, decode, decoders, not_after

TOPICS = list(Topics().inputs)
DECODERS = decoders(Topics())
NOW = datetime(2026, 1, 1, tzinfo=UTC)
CODES = {code.value for code in ErrorCode}


def one_input(data: bytes) -> None:
    if not data:
        return
    topic = TOPICS[data[0] % len(TOPICS)]
    raw = data[1:]
    key = (
        raw[raw.find(b'"customer_id":"') + 15 :].split(b'"', 1)[0]
        if b"customer_id" in raw
        else None
    )
    try:
        decode(DECODERS[topic], raw, key, 64 * 1024, not_after(NOW))
    except DecodeError as exc:
        record = orjson.loads(dead_letter(raw, key, Source(topic, 0, 0), exc, NOW))
        if record["error_code"] not in CODES or not record["error_message"]:
            raise AssertionError(f"dead letter without a known reason: {record}") from exc
        if base64.b64decode(record["payload_b64"]) != raw:
            raise AssertionError("dead letter lost the original bytes") from exc


def main() -> None:
    import atheris  # optional: only this program needs it

    atheris.instrument_all()  # coverage of every loaded module (the decoders included)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
