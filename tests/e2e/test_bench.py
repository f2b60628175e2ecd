"""A tiny ``ews bench`` run: every mode measured on real services, and a well-formed report.

Only the shape is checked, and sizes that are not timings: speed is for the full benchmark
(``tests/benchmarks/README.md``), never asserted here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from config import native
from streams.bench import MODES

MODES_RUN = (*MODES, "pipeline-py")  # and the worker on the Python sources (EWS_NATIVE=0)


@pytest.mark.kafka
def test_bench_smoke_reports_every_mode(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EWS_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "bench",
            "--events",
            "60000",
            "--customers",
            "1000",
            "--repeat",
            "1",
            "--latency-events",
            "20000",
            "--modes",
            ",".join(MODES_RUN),
            "--json",
            str(out),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=600,
    )
    (tmp_path / "bench.out").write_bytes(result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    report = orjson.loads(out.read_bytes())
    assert set(report["events_per_s_median"]) == set(MODES_RUN)
    assert all(rate > 0 for rate in report["events_per_s_median"].values())
    assert set(report["ratios"]) == {f"pipeline/{m}" for m in MODES_RUN if m != "pipeline"}
    assert report["environment"]["compiled"] is native.is_fresh()
    assert report["peak_rss_mb_max"]["pipeline"] > 0
    workers = set(MODES_RUN) - {"limit"}  # limit runs in the bench's own process
    assert set(report["events_per_cpu_s_median"]) == workers
    for run in report["runs"]:
        if run["mode"] in workers:  # CPU used over the timed window, from /proc
            assert run["cpu_s"] > 0 and run["cores"] > 0
            assert run["events_per_cpu_s"] == pytest.approx(
                run["events_per_s"] / run["cores"], rel=0.05
            )
    latency = report["latency"]
    assert latency["alerts"] > 0
    half = latency["mix_max_events_per_s"] / 2
    assert latency["offered_events_per_s"] == pytest.approx(half, abs=0.1)
    assert latency["p50_ms"] <= latency["p99_ms"] <= latency["p99_9_ms"]
    (rep,) = latency["repetitions"]  # --repeat 1: the medians are that repetition's
    assert rep["alerts"] == latency["alerts"] and rep["p99_ms"] == latency["p99_ms"]
    assert len(latency["mix_max_runs"]) == 1
    state = report["state_bytes_per_customer"]
    assert 0 < state["mean"] <= state["max"] <= 1024, "state must stay under 1 KB per customer"
    assert b"== ews bench ==" in result.stdout
