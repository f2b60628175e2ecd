"""The stock Faust baselines ``ews bench`` measures the pipeline against, run as a worker process.

``python -m streams.bench_faust MODE`` with ``MODE``:

- ``bare``: one agent over the input topics that only orjson-decodes each value (the
  framework's own ceiling);
- ``naive``: the same, plus one float per event written to a changelog-backed table (what a
  first implementation does).

Both use Faust as it comes: ``async for`` over the stream, one event at a time, acked by Faust,
``concurrency=1``, the memory store, and the worker's own commit interval, so that the committed
offsets ``ews bench`` watches advance the same way for every Faust-based run. Configured by
``EWS_KAFKA_BOOTSTRAP``, ``EWS_APP_ID``, ``EWS_PARTITIONS`` and ``EWS_BENCH_TOPICS`` (comma
separated).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import faust
import orjson

MODES = ("bare", "naive")
COMMIT_INTERVAL_S = 1.0  # as streams.app configures the real worker


def create_bench_app(mode: str, env: dict[str, str]) -> faust.App:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    partitions = int(env.get("EWS_PARTITIONS", "4"))
    app = faust.App(
        env["EWS_APP_ID"],
        broker=";".join(f"kafka://{h.strip()}" for h in env["EWS_KAFKA_BOOTSTRAP"].split(",")),
        store="memory://",
        topic_partitions=partitions,
        web_enabled=False,
        broker_commit_interval=COMMIT_INTERVAL_S,
        consumer_auto_offset_reset="earliest",
    )
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    topic = app.topic(*env["EWS_BENCH_TOPICS"].split(","), partitions=partitions, **raw)
    if mode == "bare":

        @app.agent(topic, concurrency=1)
        async def bare(stream: Any) -> None:
            async for value in stream:
                orjson.loads(value)

    else:
        table = app.Table("naive", partitions=partitions, key_type=bytes, value_type=float)

        @app.agent(topic, concurrency=1)
        async def naive(stream: Any) -> None:
            async for event in stream.events():
                data = orjson.loads(event.value)
                table[event.key] = float(len(data))

    return app


def main(argv: list[str]) -> None:
    mode = argv[1] if len(argv) > 1 else ""
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_bench_app(mode, dict(os.environ))
    faust.Worker(app, loglevel="warn", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv)
