"""``ews redis rebuild`` restores, from Kafka, exactly the Redis view a worker had written."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from config.settings import Settings
from streams.localstack import ApacheKafka, RedisServer
from streams.rebuild import group_members, notified_customers
from streams.simulator import generate
from tests.support import (
    WorkerProcess,
    isolated_settings,
    produce,
    recorded,
    redis_alerts,
    wait_processed,
    wait_until,
)

pytestmark = pytest.mark.kafka

STREAM = generate(customers=40, days=180, seed=21, malformed=3)


def snapshot(settings: Settings) -> dict[str, tuple[str, Any, int]]:
    """Every key under the prefix: its type, its whole value and its TTL in ms (-1: none); but
    the workers' heartbeats (``health``), which live seconds and come from no topic."""
    client = redis.Redis.from_url(settings.redis_url)
    heartbeats = settings.redis_prefix + "health"
    try:
        out: dict[str, tuple[str, Any, int]] = {}
        for raw in client.scan_iter(match=settings.redis_prefix + "*", count=1000):
            key = raw.decode()
            if key.startswith(heartbeats):
                continue
            kind = client.type(key).decode()
            value: Any
            if kind == "string":
                value = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            elif kind == "stream":
                value = client.xrange(key)
            else:
                raise AssertionError(f"unexpected type {kind} of {key}")
            out[key] = (kind, value, client.pttl(key))
        return out
    finally:
        client.close()


def ews(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.env_vars, "EWS_LOG_FORMAT": "json"}
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_rebuild_after_flushall_restores_every_key(
    kafka: ApacheKafka, redis_server: RedisServer, artifacts: Path
) -> None:
    """Worker output snapshotted, FLUSHALL, rebuild: the same keys, types, values and TTLs."""
    settings = isolated_settings(
        kafka.bootstrap,
        redis_server.url,
        redis_history_len=3,  # some histories are trimmed: the rebuild must trim alike
    )
    total = asyncio.run(produce(settings, recorded(STREAM, settings)))
    worker = WorkerProcess(settings, artifacts / "worker.log").start()
    try:
        wait_processed(settings, total)
        refused = ews(settings, "redis", "rebuild")
        assert refused.returncode == 2 and "running" in refused.stderr
    finally:
        worker.stop()
    alerts = redis_alerts(settings)
    assert len(alerts) >= 10, "the seeded input must give enough alerts to mean something"
    notified = asyncio.run(notified_customers(settings))
    assert notified and notified <= {a["customer_id"] for a in alerts}
    before = snapshot(settings)
    kinds = {kind for kind, _, _ in before.values()}
    assert kinds == {"string", "hash", "list", "zset", "stream"}

    redis.Redis.from_url(settings.redis_url).flushall()
    assert snapshot(settings) == {}
    wait_until(lambda: asyncio.run(group_members(settings)) == 0, 30, "the group to empty")
    done = ews(settings, "redis", "rebuild")
    assert done.returncode == 0, done.stderr
    assert '"missing_customers":0' in done.stderr, "every notified customer has its alerts"
    after = snapshot(settings)

    assert sorted(after) == sorted(before)
    for key, (kind, value, ttl) in before.items():
        assert after[key][:2] == (kind, value), key
        if ttl < 0:
            assert after[key][2] == ttl, key
        else:  # expiry counted from the original write: equal but for the seconds in between
            assert abs(after[key][2] - ttl) < 5_000, (key, ttl, after[key][2])

    again = ews(settings, "redis", "rebuild")
    assert again.returncode == 0 and " 0 written" in again.stdout
    assert snapshot(settings).keys() == before.keys()
