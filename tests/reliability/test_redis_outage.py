"""Redis stops answering for 10 s mid-stream: the worker retries without committing, then
catches up, and nothing is lost or duplicated (Apache Kafka, a redis-server of its own)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streams.localstack import ApacheKafka, RedisServer, free_port
from tests.reliability.inputs import injected, produce_stream, replayed
from tests.support import (
    assert_delivered_as_replayed,
    committed_total,
    http_get,
    redis_alerts,
    scenario_settings,
    scenario_worker,
    wait_mid_stream,
    wait_processed,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

OUTAGE_S = 10.0
SETTLE_S = 3.0  # commits of batches acked before the first write that hangs


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server this test alone pauses."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_redis_paused_for_ten_seconds_mid_stream(
    kafka: ApacheKafka, own_redis: RedisServer, artifacts: Path
) -> None:
    """SIGSTOP redis-server once the worker has applied its first batch, SIGCONT 10 s later:
    while it is down the committed offsets stand still (the batch with alerts is retried, not
    acked), the worker logs the unavailable sink and /readyz answers 503 naming Redis; afterwards
    it is ready again and catches up to exactly the replay's alerts."""
    settings = scenario_settings(kafka.bootstrap, own_redis.url, web_port=free_port())
    readyz = f"http://127.0.0.1:{settings.web_port}/readyz"
    total = produce_stream(settings)
    worker = scenario_worker(settings, artifacts, "w1")
    try:
        worker.start()
        at_pause = wait_mid_stream(settings, total)
        alerts_before = len(redis_alerts(settings))
        own_redis.pause()
        paused_at = time.monotonic()
        try:
            time.sleep(SETTLE_S)
            settled = asyncio.run(committed_total(settings))
            status, body = http_get(readyz)
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - paused_at)))
            before_resume = asyncio.run(committed_total(settings))
        finally:
            own_redis.resume()
        wait_processed(settings, total)
        wait_until(lambda: http_get(readyz)[0] == 200, 30, "ready again after the outage")
    finally:
        worker.stop()
    assert status == 503, (status, body)
    assert any(r.startswith("redis:") for r in orjson.loads(body)["reasons"]), body
    want = replayed(settings.partitions)
    assert alerts_before < len(want.alerts), "every alert was written before the outage"
    assert before_resume == settled < total, "offsets were committed while Redis was down"
    assert '"sink_unavailable"' in worker.log_path.read_text(), "no retry was logged"
    delivered = assert_delivered_as_replayed(settings, want, injected())
    print(
        f"paused at {at_pause}/{total} committed and {alerts_before} alerts, held at {settled} "
        f"for the outage; {delivered}"
    )
