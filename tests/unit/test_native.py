"""The compiled hot path (config.native) decides exactly as the Python sources do, and is used
only when it was built from exactly those sources."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from config import native

REQUIRED = os.environ.get("EWS_REQUIRE_NATIVE") == "1"


def replay_digest() -> str:
    """A digest of everything a replay decides, with the model learning as it goes: every
    alert, labelled example and final state, byte for byte; and whether it ran compiled."""
    from config.rules import load_rules
    from config.settings import Topics
    from detectors.engine import RiskDetector
    from streams.records import decoders
    from streams.replay import Learner, replay
    from streams.simulator import Simulation, as_recorded, simulate

    topics = Topics()
    detector = RiskDetector(load_rules(), "scorecard-0")
    events = simulate(Simulation(200, 240, 11, deteriorating_share=0.3), {})
    result = replay(
        as_recorded(list(events), topics), decoders(topics), detector, 4, learner=Learner(detector)
    )
    digest = hashlib.sha256()
    now = datetime(2030, 1, 1, tzinfo=UTC)
    for alert in result.alerts:
        digest.update(orjson.dumps(alert.to_dict(now)))
    for customer_id, example in result.examples:
        digest.update(customer_id.encode() + orjson.dumps(example.to_dict()))
    for customer_id in sorted(result.states):
        digest.update(result.states[customer_id].encode())
    summary = (len(result.alerts), len(result.examples), detector.model_version)
    return f"{native.loaded()} {digest.hexdigest()} {summary}"


def _run(compiled: bool) -> tuple[bool, str]:
    env = {**os.environ, "EWS_NATIVE": "1" if compiled else "0"}
    code = "from tests.unit.test_native import replay_digest; print(replay_digest())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=native.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout.split(maxsplit=1)
    return out[0] == "True", out[1]


@pytest.mark.skipif(
    not native.is_fresh() and not REQUIRED, reason="no fresh compiled build: run `make native`"
)
def test_compiled_and_interpreted_decide_byte_for_byte_alike() -> None:
    compiled_ran, compiled = _run(compiled=True)
    interpreted_ran, interpreted = _run(compiled=False)
    assert compiled_ran, "EWS_NATIVE=1 with a fresh build must load the compiled modules"
    assert not interpreted_ran, "EWS_NATIVE=0 must run the Python sources"
    assert "scorecard-0" not in compiled, f"a published model must have scored: {compiled}"
    assert compiled == interpreted


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the compiled sources, with a manifest of a build from them."""
    for path in native.COMPILED:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(native.ROOT / path, tmp_path / path)
    built = tmp_path / ".native"
    built.mkdir()
    manifest = {"built_from": native.fingerprint(tmp_path)}
    (built / native.MANIFEST).write_bytes(orjson.dumps(manifest))
    return tmp_path


def test_a_build_of_the_current_sources_is_fresh(tree: Path) -> None:
    assert native.is_fresh(tree / ".native", tree)


def test_an_edited_source_makes_the_build_stale(tree: Path) -> None:
    source = tree / native.COMPILED[-1]
    source.write_text(source.read_text() + "\n# edited\n")
    assert not native.is_fresh(tree / ".native", tree)


def test_a_build_for_another_python_is_stale(tree: Path) -> None:
    manifest = orjson.loads((tree / ".native" / native.MANIFEST).read_bytes())
    manifest["built_from"]["python"] = "cpython-310"
    (tree / ".native" / native.MANIFEST).write_bytes(orjson.dumps(manifest))
    assert not native.is_fresh(tree / ".native", tree)


@pytest.mark.parametrize("content", [None, b"", b"{not json", b"[]"])
def test_a_missing_or_unreadable_manifest_is_stale(tree: Path, content: bytes | None) -> None:
    path = tree / ".native" / native.MANIFEST
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)
    assert not native.is_fresh(tree / ".native", tree)


def test_nothing_is_looked_up_in_the_build_when_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "enabled", lambda: False)
    path = ["/src/detectors"]
    native.activate(path, "detectors")
    assert path == ["/src/detectors"]
    monkeypatch.setattr(native, "enabled", lambda: True)
    native.activate(path, "detectors")
    assert path == [str(native.NATIVE_DIR / "detectors"), "/src/detectors"]
