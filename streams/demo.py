"""``ews demo``: local services, a worker, the simulator, alerts on screen, a summary at the end.

Starts Apache Kafka (or tansu where Java/Maven are missing) and redis-server on free ports unless
``EWS_KAFKA_BOOTSTRAP`` / ``EWS_REDIS_URL`` point at existing ones, creates the topics, runs one
``ews worker`` child process and the web view (``ews web``, on port 8080 or a free one if that is
taken; ``--web-port 0`` turns it off), produces the simulator's events at ``--rate`` in
event-time order, prints every alert as it arrives, and on Ctrl-C or after ``--duration`` waits
for the worker to catch up, prints a summary (optionally as JSON) and stops everything it started.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from config.settings import Settings
from sinks.redis import RedisLayout
from streams.localstack import RedisServer, Tansu, free_port, start_broker
from streams.render import format_alert
from streams.replay import Recorded
from streams.simulator import GeneratedStream, as_recorded, generate
from streams.topics import ensure_topics

log = structlog.get_logger(__name__)

CATCH_UP_TIMEOUT_S = 60.0
LEVELS_ABOVE_WATCH = {"amber", "red"}


@dataclass(frozen=True, slots=True)
class DemoOptions:
    duration_s: float | None = None
    summary_json: str | None = None
    customers: int = 100
    days: int = 365
    seed: int = 7
    rate: float = 1000.0
    malformed: int = 5
    broker: str = "auto"
    web_port: int = 8080  # the web view's port; taken: a free one; 0: no web view


@dataclass(slots=True)
class Progress:
    produced: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)  # every message, as read


def run_demo(settings: Settings, options: DemoOptions, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ews-demo-")))
        settings, broker_name = local_services(settings, env, options.broker, workdir, stack)
        asyncio.run(ensure_topics(settings))
        worker = start_worker(settings, workdir / "worker.log")
        stack.callback(stop_process, worker)
        web_url = None
        if options.web_port:
            port = options.web_port if port_free(options.web_port) else free_port()
            stack.callback(stop_process, start_web(settings, port, workdir / "web.log"))
            web_url = f"http://127.0.0.1:{port}/"
        _banner(settings, broker_name, workdir, web_url)
        stream = generate(
            customers=options.customers,
            days=options.days,
            seed=options.seed,
            malformed=options.malformed,
        )
        progress = Progress()
        started = time.monotonic()
        with suppress(KeyboardInterrupt):
            asyncio.run(_live(settings, stream, options, progress, worker))
        summary = asyncio.run(_summary(settings, stream, progress, broker_name))
        summary["duration_s"] = round(time.monotonic() - started, 1)
        _print_summary(summary)
        if options.summary_json:
            Path(options.summary_json).write_bytes(
                orjson.dumps(summary, option=orjson.OPT_INDENT_2)
            )
        if worker.poll() is not None:
            print(f"the worker exited early ({worker.returncode}); see {workdir / 'worker.log'}")
            return 1
    return 0


def local_services(
    settings: Settings,
    env: Mapping[str, str],
    prefer: str,
    workdir: Path,
    stack: ExitStack,
) -> tuple[Settings, str]:
    """Start a broker (``prefer``: auto, kafka or tansu) and redis-server unless ``env`` names
    existing ones; ``stack`` stops them. Returns the settings that point at them."""
    changes: dict[str, Any] = {}
    broker_name = "existing Kafka"
    if "EWS_KAFKA_BOOTSTRAP" not in env:
        broker = start_broker(workdir / "broker", prefer=prefer)
        stack.callback(broker.stop)
        changes["kafka_bootstrap"] = broker.bootstrap
        broker_name = "Apache Kafka"
        if isinstance(broker, Tansu):
            broker_name = "tansu"
            print(
                "warning: Java or Maven not found, using the embedded tansu broker: fine for a "
                "first look, but it loses table state on restart (see README)",
                file=sys.stderr,
            )
            changes["kafka_idempotent_producer"] = False  # tansu refuses it
            changes["kafka_session_timeout_s"] = 6.0  # tansu holds a join for half of it
    if "EWS_REDIS_URL" not in env:
        server = RedisServer(workdir / "redis")
        server.start()
        stack.callback(server.stop)
        changes["redis_url"] = server.url
    return dataclasses.replace(settings, **changes), broker_name


def start_worker(
    settings: Settings, log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``ews worker`` as a child process with these settings (and ``env``, when given), logging
    JSON to ``log_path``."""
    return _ews_child(settings, ["worker"], log_path, env)


def start_web(settings: Settings, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """``ews web`` on 127.0.0.1:``port`` as a child process, logging to ``log_path``."""
    return _ews_child(settings, ["web", "--port", str(port)], log_path)


def _ews_child(
    settings: Settings, args: list[str], log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log_file = log_path.open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *args],
            env={**os.environ, **settings.env_vars, "EWS_LOG_FORMAT": "json", **(env or {})},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log_file.close()


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s: only the process this module started."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _banner(settings: Settings, broker_name: str, workdir: Path, web_url: str | None) -> None:
    print(f"ews demo: {broker_name} at {settings.kafka_bootstrap}, Redis at {settings.redis_url}")
    print(f"  worker log: {workdir / 'worker.log'}")
    if web_url:
        print(f"  web view: {web_url} (watch alerts arrive, open a customer, acknowledge)")
    print(
        f"  in another terminal: EWS_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} "
        f"EWS_REDIS_URL={settings.redis_url} .venv/bin/ews customer show c0001"
    )
    print("  alerts appear below as the worker raises them; Ctrl-C stops the demo\n", flush=True)


async def _live(
    settings: Settings,
    stream: GeneratedStream,
    options: DemoOptions,
    progress: Progress,
    worker: subprocess.Popen[bytes],
) -> None:
    producing = asyncio.create_task(_produce(settings, stream, options.rate, progress))
    showing = asyncio.create_task(_show(settings, progress))
    deadline = None if options.duration_s is None else time.monotonic() + options.duration_s
    try:
        while deadline is None or time.monotonic() < deadline:
            if worker.poll() is not None:
                print("the worker stopped unexpectedly", file=sys.stderr)
                break
            await asyncio.sleep(0.2)
    finally:
        producing.cancel()
        with suppress(asyncio.CancelledError):
            await producing
        await _catch_up(settings, progress)
        showing.cancel()
        with suppress(asyncio.CancelledError):
            await showing


async def _produce(
    settings: Settings, stream: GeneratedStream, rate: float, progress: Progress
) -> None:
    def sent(index: int, message: Recorded) -> None:
        progress.produced = index + 1

    await produce(settings, as_recorded(stream.messages, settings.topics), rate, sent)
    print(f"-- all {progress.produced} events produced; watching (Ctrl-C to stop)", flush=True)


async def produce(
    settings: Settings,
    messages: Iterable[Recorded],
    rate: float | None = None,
    on_sent: Callable[[int, Recorded], None] | None = None,
    due_at: Callable[[int, Recorded], float] | None = None,
) -> int:
    """Send ``messages`` in order to their topics and flush; return how many. Message ``i`` goes
    no earlier than ``i / rate`` seconds after the start, nor than ``due_at(i, message)`` if
    given (e.g. its event time sped up); ``on_sent`` hears of each once the producer has it."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=5,
        max_batch_size=256 * 1024,
        **settings.kafka_client_options(),
    )
    await producer.start()
    started = time.monotonic()
    sent = 0
    try:
        for index, message in enumerate(messages):
            await producer.send(message.topic, message.value, key=message.key)
            if on_sent is not None:
                on_sent(index, message)
            due = (index + 1) / rate if rate else 0.0
            if due_at is not None:
                due = max(due, due_at(index, message))
            ahead = due - (time.monotonic() - started)
            if ahead > 0.002:
                await producer.flush()
                await asyncio.sleep(ahead)
            sent = index + 1
        await producer.flush()
    finally:
        with suppress(Exception):
            await producer.flush()
        await producer.stop()
    return sent


async def _show(settings: Settings, progress: Progress) -> None:
    consumer = AIOKafkaConsumer(
        settings.topics.notifications,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    colour = sys.stdout.isatty()
    try:
        async for record in consumer:
            alert = orjson.loads(record.value)
            progress.alerts.append(alert)
            print(format_alert(alert, colour=colour), flush=True)
    finally:
        await consumer.stop()


async def _catch_up(settings: Settings, progress: Progress) -> None:
    """Wait (bounded) until the worker has committed every produced event."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while time.monotonic() < deadline:
        if await processed(settings) >= progress.produced:
            await asyncio.sleep(1.0)  # let the last notifications reach the viewer
            return
        await asyncio.sleep(0.5)
    print("warning: the worker did not catch up within the timeout", file=sys.stderr)


async def processed(settings: Settings) -> int:
    """Events the worker group has committed on the input topics."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.app_id,
        enable_auto_commit=False,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p) for t in settings.topics.inputs for p in range(settings.partitions)
        ]
        return sum([(await consumer.committed(tp)) or 0 for tp in tps])
    finally:
        await consumer.stop()


async def count_messages(settings: Settings, topic: str, idle_s: float = 2.0) -> int:
    """Messages on ``topic``, counted by reading it (offsets alone mislead on tansu)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    count = 0
    try:
        while batches := await consumer.getmany(timeout_ms=int(idle_s * 1000)):
            count += sum(len(b) for b in batches.values())
    finally:
        await consumer.stop()
    return count


async def _summary(
    settings: Settings, stream: GeneratedStream, progress: Progress, broker: str
) -> dict[str, Any]:
    layout = RedisLayout(settings.redis_prefix)
    client = redis.Redis.from_url(settings.redis_url, password=settings.redis_password)
    try:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(layout.alerts)  # type: ignore[assignment]
        redis_ids = {fields[b"alert_id"] for _, fields in entries}
    finally:
        client.close()
    distinct = {a["alert_id"]: a for a in progress.alerts}
    by_customer: dict[str, set[str]] = {}
    for alert in distinct.values():
        by_customer.setdefault(alert["customer_id"], set()).add(alert["level"])
    bad = {c for c, t in stream.truth.items() if t.deteriorates}
    healthy = set(stream.truth) - bad
    return {
        "broker": broker,
        "events_produced": progress.produced,
        "events_processed": await processed(settings),
        "malformed_injected": sum(m.malformed for m in stream.messages[: progress.produced]),
        "dead_letters": await count_messages(settings, settings.topics.deadletter),
        "alerts_by_level": dict(Counter(a["level"] for a in distinct.values())),
        "alerts_by_kind": dict(Counter(a["kind"] for a in distinct.values())),
        "alerts_in_redis": len(redis_ids),
        "notifications_messages": len(progress.alerts),
        "notifications_distinct": len(distinct),
        "deteriorating_customers": len(bad),
        "deteriorating_alerted": len(bad & set(by_customer)),
        "deteriorating_amber_or_red": len(
            {c for c in bad if by_customer.get(c, set()) & LEVELS_ABOVE_WATCH}
        ),
        "reached_30dpd": sum(1 for t in stream.truth.values() if t.first_30dpd is not None),
        "amber_or_red_before_30dpd": len(_warned_before_30dpd(stream, distinct)),
        "healthy_customers": len(healthy),
        "healthy_alerted": len(healthy & set(by_customer)),
        "healthy_above_watch": len(
            {c for c in healthy if by_customer.get(c, set()) & LEVELS_ABOVE_WATCH}
        ),
    }


def _warned_before_30dpd(stream: GeneratedStream, alerts: dict[str, dict[str, Any]]) -> set[str]:
    """Customers who reached 30+ DPD with an amber or red alert dated before that day."""
    first_warning: dict[str, str] = {}
    for alert in alerts.values():
        if alert["level"] in LEVELS_ABOVE_WATCH:
            customer = alert["customer_id"]
            first_warning[customer] = min(first_warning.get(customer, "9"), alert["event_time"])
    return {
        c
        for c, t in stream.truth.items()
        if t.first_30dpd is not None
        and c in first_warning
        and first_warning[c][:10] < t.first_30dpd.isoformat()
    }


def _print_summary(summary: dict[str, Any]) -> None:
    print("\n== ews demo summary ==")
    for key, value in summary.items():
        print(f"  {key:<28} {value}")
