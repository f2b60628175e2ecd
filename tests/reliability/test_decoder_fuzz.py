"""Decoder fuzzing from real traffic: the simulator's messages, valid and malformed, mutated at
the byte and the field level and with their keys changed, go through the worker's bad-message
path (``decode``, then ``dead_letter``). Nothing raises but ``DecodeError``, every failure is a
dead letter with a known reason that gives back the original bytes, and what decodes is keyed
right. (tests/unit/test_records.py fuzzes arbitrary bytes and arbitrary JSON objects; these
start from near-valid input, where decoders are most likely to slip.)"""

from __future__ import annotations

import base64
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import Topics
from detectors.events import Source
from streams.records import DecodeError, ErrorCode, dead_letter, decode, decoders, not_after
from streams.simulator import input_topic
from tests.reliability.inputs import stream

pytestmark = pytest.mark.reliability

TOPICS = Topics()
DECODERS = decoders(TOPICS)
MAX_BYTES = 64 * 1024
NOW = datetime(2026, 1, 1, tzinfo=UTC)
CODES = {code.value for code in ErrorCode}


def _seeds() -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) of every malformed message and a spread of valid ones."""
    messages = stream("main").messages
    chosen = [m for m in messages if m.malformed] + messages[:: max(1, len(messages) // 300)]
    return [(input_topic(TOPICS, m.stream), m.key, m.value) for m in chosen]


SEEDS = _seeds()

_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what JSON encoders write
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "-0", "1e999", "NaN", "2025-13-01T00:00:00Z", "\x00", "\ud7ff" * 3])
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@st.composite
def _byte_mutant(draw: st.DrawFn, value: bytes) -> bytes:
    """Flip, drop, insert, truncate or duplicate bytes, a few times."""
    data = bytearray(value)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "drop", "insert", "truncate", "duplicate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "drop":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del data[at:]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


@st.composite
def _field_mutant(draw: st.DrawFn, value: bytes) -> bytes:
    """Replace, delete or add a field of a JSON object (what parses as one)."""
    try:
        data: Any = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if not isinstance(data, dict) or not data:
        return value
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(data)) | st.text(max_size=8))
        op = draw(st.sampled_from(["replace", "delete", "huge"]))
        if op == "delete":
            data.pop(name, None)
        elif op == "huge":
            data[name] = "9" * draw(st.integers(100, 70_000))
        else:
            data[name] = draw(_JSON)
    return orjson.dumps(data)


@st.composite
def _message(draw: st.DrawFn) -> tuple[str, bytes | None, bytes | None]:
    topic, key, value = draw(st.sampled_from(SEEDS))
    how = draw(st.sampled_from(["bytes", "fields", "both", "none"]))
    if how in ("bytes", "both"):
        value = draw(_byte_mutant(value))
    if how in ("fields", "both"):
        value = draw(_field_mutant(value))
    new_key = draw(st.sampled_from([key, None, b"", b"c9999", key + b"\xff"]))
    raw: bytes | None = draw(st.sampled_from([value, value, value, None, b""]))
    return topic, new_key, raw


def _read_like_the_worker(topic: str, key: bytes | None, raw: bytes | None) -> str:
    """What the pipeline does with one fetched message: the event, or its dead letter."""
    try:
        event = decode(DECODERS[topic], raw, key, MAX_BYTES, not_after(NOW))
    except DecodeError as exc:
        record = orjson.loads(dead_letter(raw, key, Source(topic, 0, 7), exc, NOW))
        assert record["error_code"] in CODES
        assert record["error_message"]
        payload, cut = raw or b"", (key or b"")[:MAX_BYTES]
        assert base64.b64decode(record["payload_b64"]) == payload[:MAX_BYTES]
        assert record["payload_bytes"] == len(payload)
        assert record["payload_truncated"] == (len(payload) > MAX_BYTES)
        assert record["key_b64"] == (None if key is None else base64.b64encode(cut).decode())
        return record["error_code"]  # type: ignore[no-any-return]
    assert key is None or key == event.customer_id.encode()
    assert event.ts.utcoffset() is not None and not event.ts.utcoffset()
    return "ok"


@settings(
    max_examples=600,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(message=_message())
def test_mutated_traffic_decodes_or_becomes_a_dead_letter(
    message: tuple[str, bytes | None, bytes | None],
) -> None:
    """Mutated real messages never crash the decoder; each either decodes (keyed right) or
    becomes a dead letter with a known reason and the original bytes (the first
    ``MAX_BYTES`` of them, with the length, when they are more)."""
    _read_like_the_worker(*message)


def test_every_seed_message_is_read_as_the_simulator_meant() -> None:
    """The unmutated seeds: valid ones decode, malformed ones are dead letters."""
    outcomes = {_read_like_the_worker(t, k, v) for t, k, v in SEEDS}
    assert "ok" in outcomes and len(outcomes) > 5


def test_coverage_guided_fuzzing_with_atheris(tmp_path: Path) -> None:
    """atheris (libFuzzer) from a corpus of simulator messages, 20,000 inputs: no crash."""
    pytest.importorskip("atheris", reason="atheris not installed (pip install atheris)")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    index = {t: i for i, t in enumerate(TOPICS.inputs)}
    for n, (topic, _, value) in enumerate(SEEDS[:200]):
        (corpus / f"seed-{n}").write_bytes(bytes([index[topic]]) + value)
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.fuzz_decoders", "-runs=20000", "-max_len=4096",
         str(corpus)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
