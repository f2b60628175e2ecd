"""A real worker's HTTP endpoints, against a real Apache Kafka broker and real redis-servers."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from config.settings import Settings, load_settings
from sinks.redis import RedisLayout
from streams.localstack import ApacheKafka, RedisServer, free_port
from streams.replay import Recorded
from streams.simulator import generate
from tests.support import (
    WorkerProcess,
    dead_letters,
    expected,
    http_get,
    isolated_settings,
    produce,
    recorded,
    redis_alerts,
    wait_processed,
    wait_until,
)

pytestmark = pytest.mark.kafka

STREAM = generate(customers=30, days=150, seed=11, malformed=6)


get = http_get


def metric_values(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, from Prometheus text."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def settings_for(kafka: ApacheKafka, redis_url: str) -> Settings:
    return isolated_settings(kafka.bootstrap, redis_url, web_port=free_port())


def test_endpoints_report_health_metrics_and_customer_state(
    kafka: ApacheKafka, redis_server: RedisServer, artifacts: Path
) -> None:
    """After a stream: alive, ready, metrics equal to what was processed, customers' states."""
    settings = settings_for(kafka, redis_server.url)
    base = f"http://127.0.0.1:{settings.web_port}"
    oversized = b'{"pad":"' + b"x" * settings.max_message_bytes + b'"}'
    messages = [
        *recorded(STREAM, settings),
        Recorded(settings.topics.transactions, b"c0001", oversized),
    ]
    want = expected(messages, settings)
    total = asyncio.run(produce(settings, messages))
    worker = WorkerProcess(settings, artifacts / "worker.log").start()
    try:
        wait_until(lambda: get(base + "/healthz")[0] == 200, 60, "/healthz")
        wait_processed(settings, total)
        wait_until(lambda: get(base + "/readyz")[0] == 200, 30, "/readyz")
        status, body = get(base + "/readyz")
        assert orjson.loads(body) == {"ready": True, "partitions": 12}  # 4 inputs x 3

        status, body = get(base + "/metrics")
        assert status == 200
        values = metric_values(body.decode())
        assert values["ews_events_in_total"] == total
        assert values["ews_dead_letters_total"] == len(want.dead_letters) == 7
        letters = dead_letters(settings)
        assert [d["error_code"] for d in letters].count("oversized") == 1
        by_level_kind = Counter((a.level.label, a.kind.value) for a in want.alerts)
        for (level, kind), count in by_level_kind.items():
            assert values[f'ews_alerts_total{{level="{level}",kind="{kind}"}}'] == count
        assert values["ews_consumer_lag_total"] == 0
        assert values["ews_sink_latency_seconds_count"] >= 1
        assert values['ews_model_info{version="scorecard-0",rules="rules-5"}'] == 1
        assert values["ews_assigned_partitions"] == 12

        alerted = redis_alerts(settings)[-1]["customer_id"]
        state = want.states[alerted]
        status, body = get(f"{base}/customers/{alerted}")
        assert status == 200
        view = orjson.loads(body)
        assert view["customer_id"] == alerted
        assert view["level"] == state.alert.level.label
        assert view["notified_level"] == state.alert.notified.label
        assert view["events"] == state.events
        assert view["score"] == pytest.approx(state.score, abs=1e-6)
        stored = redis.Redis.from_url(settings.redis_url, decode_responses=True).hgetall(
            RedisLayout(settings.redis_prefix).customer(alerted)
        )
        assert stored["level"] == view["notified_level"]
        assert get(f"{base}/customers/nobody")[0] == 404
    finally:
        worker.stop()


def test_worker_is_not_ready_while_redis_is_down(
    kafka: ApacheKafka, tmp_path: Path, artifacts: Path
) -> None:
    """Redis stopped: /readyz answers 503 naming Redis, /healthz stays 200; back to 200 after."""
    own_redis = RedisServer(tmp_path / "redis")
    own_redis.start()
    settings = settings_for(kafka, own_redis.url)
    base = f"http://127.0.0.1:{settings.web_port}"
    total = asyncio.run(produce(settings, recorded(STREAM, settings)))
    worker = WorkerProcess(settings, artifacts / "worker.log").start()
    try:
        wait_processed(settings, total)
        wait_until(lambda: get(base + "/readyz")[0] == 200, 30, "ready")
        own_redis.stop()
        status, body = get(base + "/readyz")
        assert status == 503
        reasons: list[Any] = orjson.loads(body)["reasons"]
        assert any(r.startswith("redis:") for r in reasons), reasons
        assert get(base + "/healthz")[0] == 200
        own_redis.start()
        wait_until(lambda: get(base + "/readyz")[0] == 200, 30, "ready again")
    finally:
        worker.stop()
        own_redis.stop()


def test_any_worker_answers_for_any_customer(
    kafka: ApacheKafka, redis_server: RedisServer, artifacts: Path
) -> None:
    """Two workers share the partitions; each answers /customers/{id} for every customer,
    forwarding to the owner, with the same body."""
    first = load_settings(
        {}, **{**_fields(settings_for(kafka, redis_server.url)), "web_host": "127.0.0.1"}
    )
    second = load_settings({}, **{**_fields(first), "web_port": free_port()})
    messages = recorded(STREAM, first)
    want = expected(messages, first)
    total = asyncio.run(produce(first, messages))
    workers = [
        WorkerProcess(first, artifacts / "worker-1.log").start(),
        WorkerProcess(second, artifacts / "worker-2.log").start(),
    ]
    bases = [f"http://127.0.0.1:{s.web_port}" for s in (first, second)]
    try:
        wait_processed(first, total)

        def split() -> bool:
            owned = [metric_values(get(b + "/metrics")[1].decode()) for b in bases]
            return all(v.get("ews_assigned_partitions", 0) > 0 for v in owned)

        wait_until(split, 60, "both workers to own partitions")
        for customer_id in sorted(want.states)[:6]:
            answers = _settled([f"{base}/customers/{customer_id}" for base in bases])
            assert [status for status, _ in answers] == [200, 200], answers
            assert answers[0][1] == answers[1][1]
            assert orjson.loads(answers[0][1])["events"] == want.states[customer_id].events
    finally:
        for worker in workers:
            worker.stop()


def _settled(urls: list[str]) -> list[tuple[int, bytes]]:
    """Each URL's answer, once none is 503 (the owner still restoring its table after a rebalance)
    or 0 (no answer)."""
    answers: list[tuple[int, bytes]] = []

    def settled() -> bool:
        answers[:] = [get(url) for url in urls]
        return all(status not in (0, 503) for status, _ in answers)

    wait_until(settled, 60, f"answers from {urls}")
    return answers


def _fields(settings: Settings) -> dict[str, Any]:
    names = ("kafka_bootstrap", "redis_url", "topic_prefix", "app_id", "redis_prefix",
             "partitions", "model_learning", "web_port", "web_host")  # fmt: skip
    return {name: getattr(settings, name) for name in names}
