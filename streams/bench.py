"""``ews bench``: the pipeline's throughput, latency and memory against its baselines, in one run.

Starts Apache Kafka (else tansu) and redis-server as the demo does, unless ``EWS_KAFKA_BOOTSTRAP``
/ ``EWS_REDIS_URL`` name existing ones; pre-produces one fixed, seeded event mix (the simulator's
transactions and repayments, no malformed messages) to its own topics; then, ``--repeat`` times
and interleaved so that a noisy neighbour hurts every mode alike, reads the whole mix with:

1. **limit**: a bare aiokafka consumer that fetches and orjson-decodes (in this process);
2. **faust-bare**: a stock Faust agent that only decodes (``streams.bench_faust bare``);
3. **faust-naive**: a stock Faust agent that also writes one float per event to a
   changelog-backed table (``streams.bench_faust naive``);
4. **pipeline**: the real ``ews worker``: decode, validate, merge, detectors, model, levels, both
   sinks, offsets committed after them;
5. **pipeline-py** (on request): the same worker on the Python sources (``EWS_NATIVE=0``), for
   what the compiled hot path (``config.native``) is worth: pipeline/pipeline-py;
6. **pipeline-2w** (on request): two ``ews worker`` processes in one group on a mix twice as
   large (twice the customers, the same days) with twice the partitions, timed once both have
   their partitions and tables, for the scaling ratio pipeline-2w/pipeline.

The three Faust-based modes run as worker processes with a fresh consumer group each and are
timed the same way, from outside, by their committed offsets: the rate is the events committed
between the first commit seen and the last, over that time (the commit interval is 1 s for all
three). Each reports its peak RSS. Then the pipeline's event-to-alert latency is measured, also
``--repeat`` times, at a fixed offered load (default half the pipeline's median maximum on the
alert-dense latency mix): events are stamped when sent, alerts when they arrive on the
notifications topic, and each alert is matched to the event that triggered it. State bytes per
customer come from an offline replay of part of the mix. Medians are quoted; ratios are of
medians from this one run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from config import native
from config.rules import load_rules
from config.settings import Settings, Topics
from detectors.engine import RiskDetector
from streams.demo import local_services, produce, start_worker, stop_process
from streams.records import decoders
from streams.replay import Recorded, replay
from streams.simulator import (
    GeneratedMessage,
    GeneratedStream,
    Simulation,
    as_recorded,
    generate,
    input_topic,
    simulate,
)
from streams.topics import ensure_topics

MODES = ("limit", "faust-bare", "faust-naive", "pipeline")
OPTIONAL_MODES = ("pipeline-py", "pipeline-2w")
STORES = {"memory": "memory://", "rocksdb": "rocksdb://"}
EVENTS_PER_CUSTOMER_DAY = 1.0  # roughly what the simulator makes; used to size the mix
RUN_TIMEOUT_S = 900.0  # or 1 ms per event, whichever is longer


def _run_timeout(events: int) -> float:
    return max(RUN_TIMEOUT_S, events / 1000)


POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class BenchOptions:
    events: int = 200_000
    customers: int = 10_000
    repeat: int = 3
    modes: tuple[str, ...] = MODES
    latency_rate: float | None = None  # events/s; None: half the latency mix's median maximum
    latency_events: int = 60_000  # about 130 alerts a repetition: p99 is not just the worst
    seed: int = 11
    json_path: str | None = None
    broker: str = "auto"
    store: str = "memory"  # the pipeline's table store: memory or rocksdb (rocksdict)


@dataclass(slots=True)
class Run:
    """One mode's repetition. ``cpu_s``: CPU seconds its worker processes used (all threads,
    summed over processes) while the timed events were committed, so ``events_per_cpu_s`` is the
    work per CPU-second whatever share of the cores the workers got, and ``cores`` the cores
    they kept busy (``cpu_s`` over the window's wall time)."""

    mode: str
    events_per_s: float
    peak_rss_mb: float | None = None
    cpu_s: float | None = None
    events_per_cpu_s: float | None = None
    cores: float | None = None


@dataclass(frozen=True, slots=True)
class _Window:
    """What the committed offsets showed: events committed over seconds, and the workers' CPU
    seconds meanwhile."""

    events: int
    seconds: float
    cpu_s: float | None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


@dataclass(slots=True)
class Report:
    options: dict[str, Any]
    environment: dict[str, Any]
    runs: list[Run] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)
    state_bytes: dict[str, float] = field(default_factory=dict)

    def medians(self, field_name: str = "events_per_s") -> dict[str, float]:
        values: dict[str, list[float]] = {}
        for run in self.runs:
            value = getattr(run, field_name)
            if value is not None:
                values.setdefault(run.mode, []).append(value)
        return {mode: statistics.median(vs) for mode, vs in values.items()}

    def to_dict(self) -> dict[str, Any]:
        medians = self.medians()
        pipeline = medians.get("pipeline")
        ratios = {
            f"pipeline/{mode}": round(pipeline / rate, 3)
            for mode, rate in medians.items()
            if pipeline and mode in MODES and mode != "pipeline" and rate > 0
        }
        per_cpu = self.medians("events_per_cpu_s")
        if pipeline and medians.get("pipeline-py"):
            ratios["pipeline/pipeline-py"] = round(pipeline / medians["pipeline-py"], 3)
        if pipeline and "pipeline-2w" in medians:
            ratios["pipeline-2w/pipeline"] = round(medians["pipeline-2w"] / pipeline, 3)
            if per_cpu.get("pipeline") and "pipeline-2w" in per_cpu:
                ratios["pipeline-2w/pipeline per CPU-second"] = round(
                    per_cpu["pipeline-2w"] / per_cpu["pipeline"], 3
                )
        rss: dict[str, float] = {}
        for run in self.runs:
            if run.peak_rss_mb is not None:
                rss[run.mode] = max(rss.get(run.mode, 0.0), run.peak_rss_mb)
        return {
            "options": self.options,
            "environment": self.environment,
            "events_per_s_median": {m: round(r, 1) for m, r in medians.items()},
            "ratios": ratios,
            "peak_rss_mb_max": rss,
            "events_per_cpu_s_median": {m: round(r, 1) for m, r in per_cpu.items()},
            "cores_median": {m: round(c, 2) for m, c in self.medians("cores").items()},
            "latency": self.latency,
            "state_bytes_per_customer": self.state_bytes,
            "runs": [dataclasses.asdict(r) for r in self.runs],
        }


def run_bench(
    settings: Settings, options: BenchOptions, env: Mapping[str, str] | None = None
) -> int:
    env = os.environ if env is None else env
    unknown = set(options.modes) - set(MODES) - set(OPTIONAL_MODES)
    if unknown:
        known = ", ".join(MODES + OPTIONAL_MODES)
        print(f"ews bench: unknown modes {sorted(unknown)}; known: {known}")
        return 2
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ews-bench-")))
        settings, broker_name = local_services(settings, env, options.broker, workdir, stack)
        report = Report(
            options=dataclasses.asdict(options),
            environment={
                "broker": broker_name,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "partitions": settings.partitions,
                "store": options.store,
                "customers": options.customers,
                "compiled": native.enabled(),  # the pipeline's hot path (config.native)
            },
        )
        settings = dataclasses.replace(settings, store=STORES[options.store])
        base = _variant(settings, "bench", "bench.")
        print(f"ews bench: {broker_name}; producing up to {options.events} events", flush=True)
        sample = _Sample(customers=1000)
        totals = dict.fromkeys(options.modes, _produce_mix(base, options, sample))
        if "pipeline-2w" in options.modes:  # twice the customers on twice the partitions
            wide = dataclasses.replace(
                options, events=2 * options.events, customers=2 * options.customers
            )
            totals["pipeline-2w"] = _produce_mix(_wide(base), wide)
        for rep in range(options.repeat):
            for mode in options.modes:
                run = _measure(mode, base, f"{mode}-{rep}", totals[mode], workdir)
                report.runs.append(run)
                rss = f", peak RSS {run.peak_rss_mb:.0f} MB" if run.peak_rss_mb else ""
                cpu = (
                    f", {run.events_per_cpu_s:,.0f} per CPU-second on {run.cores:.2f} cores"
                    if run.events_per_cpu_s and run.cores
                    else ""
                )
                print(f"  {mode:<12} rep {rep + 1}: {run.events_per_s:>10,.0f} events/s{rss}{cpu}")
        if "pipeline" in options.modes:
            report.latency = _latency(settings, options, workdir)
        report.state_bytes = state_bytes(sample.messages, settings.partitions)
        result = report.to_dict()
        print_report(result)
        if options.json_path:
            Path(options.json_path).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


def event_mix(events: int, customers: int, seed: int) -> Iterator[GeneratedMessage]:
    """The first ``events`` (in event time) of a seeded stream over ``customers`` customers, as
    simulated (a million customers' mix never sits in memory at once)."""
    days = max(1, math.ceil(events / customers / EVENTS_PER_CUSTOMER_DAY) + 1)
    simulation = Simulation(customers, days, seed, deteriorating_share=0.2, recovery_share=0.0)
    return itertools.islice(simulate(simulation, {}), events)


@dataclass(slots=True)
class _Sample:
    """The messages of the first ``customers`` customers seen (for the state size)."""

    customers: int
    messages: list[GeneratedMessage] = field(default_factory=list)
    keys: set[bytes | None] = field(default_factory=set)

    def see(self, message: GeneratedMessage) -> GeneratedMessage:
        if message.key in self.keys or len(self.keys) < self.customers:
            self.keys.add(message.key)
            self.messages.append(message)
        return message


def _produce_mix(settings: Settings, options: BenchOptions, sample: _Sample | None = None) -> int:
    asyncio.run(ensure_topics(settings))
    messages = event_mix(options.events, options.customers, options.seed)
    if sample is not None:
        messages = map(sample.see, messages)
    recorded = (Recorded(input_topic(settings.topics, m.stream), m.key, m.value) for m in messages)
    return asyncio.run(produce(settings, recorded))


def _variant(settings: Settings, app_id: str, topic_prefix: str) -> Settings:
    return dataclasses.replace(
        settings,
        app_id=app_id,
        topics=Topics.with_prefix(topic_prefix),
        redis_prefix=f"{app_id}:",
        log_level="info",  # two workers' window opens on what their logs say (settled)
    )


def _wide(base: Settings) -> Settings:
    """Topics of their own for two workers, with twice the partitions."""
    return dataclasses.replace(_variant(base, "bench", "bench2w."), partitions=2 * base.partitions)


def _measure(mode: str, base: Settings, name: str, total: int, workdir: Path) -> Run:
    if mode == "limit":
        return Run(mode, asyncio.run(_limit(base, total)))
    settings = _variant(base, f"bench-{name}", "bench.")
    if mode == "pipeline-2w":
        settings = _variant(_wide(base), f"bench-{name}", "bench2w.")
    settings = dataclasses.replace(settings, data_dir=str(workdir / name))
    logs = [workdir / f"{name}.log"]
    if mode == "pipeline":
        processes = [start_worker(settings, logs[0])]
    elif mode == "pipeline-py":
        processes = [start_worker(settings, logs[0], {"EWS_NATIVE": "0"})]
    elif mode == "pipeline-2w":
        logs.append(workdir / f"{name}-b.log")
        processes = [
            start_worker(dataclasses.replace(settings, data_dir=f"{settings.data_dir}-{i}"), log)
            for i, log in enumerate(logs)
        ]
    else:
        processes = [_start_baseline(mode.removeprefix("faust-"), settings, logs[0])]
    try:
        window = asyncio.run(_watch_commits(settings, total, processes, logs))
        peaks = [peak_rss_mb(process.pid) for process in processes]
        run = Run(mode, window.events_per_s, max((p for p in peaks if p is not None), default=None))
        if window.cpu_s:
            run.cpu_s = round(window.cpu_s, 2)
            run.events_per_cpu_s = round(window.events / window.cpu_s, 1)
            run.cores = round(window.cpu_s / window.seconds, 3)
        return run
    finally:
        for process in processes:
            stop_process(process)


async def _limit(settings: Settings, total: int) -> float:
    """Fetch and decode every message with a plain consumer; events/s after the first fetch."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p) for t in settings.topics.inputs for p in range(settings.partitions)
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count, first, started = 0, 0, 0.0
        deadline = time.monotonic() + _run_timeout(total)
        while count < total and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            n = 0
            for records in batches.values():
                for record in records:
                    orjson.loads(record.value)
                    n += 1
            if n and not count:
                first, started = n, time.monotonic()
            count += n
        if count < total:
            raise RuntimeError(f"limit: read {count} of {total} events before the timeout")
        return (count - first) / max(time.monotonic() - started, 1e-9)
    finally:
        await consumer.stop()


def _start_baseline(mode: str, settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **settings.env_vars,
        "EWS_BENCH_TOPICS": ",".join(settings.topics.inputs),
    }
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.bench_faust", mode],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _watch_commits(
    settings: Settings,
    total: int,
    processes: list[subprocess.Popen[bytes]],
    logs: list[Path],
) -> _Window:
    """Events/s between the first commit seen and the commit of the last event, and the CPU
    the worker processes used between the two."""
    (first_at, first_done, first_cpu), (last_at, last_done, last_cpu) = await _wait_committed(
        settings, total, processes, logs
    )
    if last_at <= first_at:
        raise RuntimeError(
            f"{settings.app_id}: the whole mix was committed at once; use more --events to time it"
        )
    events, seconds = last_done - first_done, last_at - first_at
    cpu = None if first_cpu is None or last_cpu is None else last_cpu - first_cpu
    return _Window(events, seconds, cpu)


async def _wait_committed(
    settings: Settings,
    total: int,
    processes: list[subprocess.Popen[bytes]],
    logs: list[Path],
) -> tuple[tuple[float, int, float | None], tuple[float, int, float | None]]:
    """Poll the group's committed offsets until ``total``; the first and last (time, count,
    the processes' CPU seconds so far)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.app_id,
        enable_auto_commit=False,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    tps = _input_partitions(settings)
    first: tuple[float, int, float | None] | None = None
    deadline = time.monotonic() + _run_timeout(total)
    try:
        while time.monotonic() < deadline:
            for process, log_path in zip(processes, logs, strict=True):
                if process.poll() is not None:
                    raise RuntimeError(f"{settings.app_id} exited early:\n{_tail(log_path)}")
            done = sum([(await consumer.committed(tp)) or 0 for tp in tps])
            now = time.monotonic()
            if done and first is None and settled(logs):
                first = (now, done, cpu_seconds(processes))
            if done >= total and first is not None:
                return first, (now, done, cpu_seconds(processes))
            await asyncio.sleep(POLL_S)
        raise RuntimeError(f"{settings.app_id} did not finish within {_run_timeout(total):.0f} s")
    finally:
        await consumer.stop()


_GENERATION = re.compile(rb"generation id (\d+)")
_RECOVERED = b"Worker ready"  # Faust's recovery, once a worker's tables are restored


def settled(logs: list[Path]) -> bool:
    """True when every worker has been assigned partitions in the same (latest) group
    generation and has restored its tables since: two workers started together join one at a
    time, and the first one takes every partition until the second's join moves half of them
    (its buffered events dropped, the changelog of what it applied recovered before either
    goes on). The window starts after that one-off handover."""
    if len(logs) == 1:
        return True
    generations = set()
    for log_path in logs:
        try:
            text = log_path.read_bytes()
        except OSError:
            return False
        found = list(_GENERATION.finditer(text))
        if not found or text.find(_RECOVERED, found[-1].end()) < 0:
            return False
        generations.add(found[-1].group(1))
    return len(generations) == 1


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def _input_partitions(settings: Settings) -> list[TopicPartition]:
    partitions = range(settings.partitions)
    return [TopicPartition(t, p) for t in settings.topics.inputs for p in partitions]


def cpu_seconds(processes: list[subprocess.Popen[bytes]]) -> float | None:
    """User and system CPU seconds the processes used so far (every thread), where /proc
    offers them."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for process in processes:
        try:
            stat = Path(f"/proc/{process.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat
    return total / ticks


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM), where /proc offers it."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


_QUANTILES = {"p50_ms": 0.5, "p90_ms": 0.9, "p99_ms": 0.99, "p99_9_ms": 0.999}


def _latency(settings: Settings, options: BenchOptions, workdir: Path) -> dict[str, Any]:
    """Event-to-alert latency of a fresh pipeline worker, ``options.repeat`` times, at
    ``options.latency_rate`` or by default at half the pipeline's maximum on the latency mix
    itself (alert-dense, it costs more per event than the throughput mix, so half of that mix's
    rate is not half load), timed ``options.repeat`` times first: the median is halved, so one
    lucky timing does not set an overload. Quantiles are the medians of the repetitions'; each
    repetition's are reported too."""
    mix = latency_mix(options.latency_events, options.seed)
    maxima: list[float] = []
    most: float | None = None
    if options.latency_rate:
        rate = options.latency_rate
    else:  # timed on three times as much of the mix: a steadier figure
        longer = latency_mix(3 * options.latency_events, options.seed)
        maxima = [_latency_mix_max(settings, longer, workdir, rep) for rep in range(options.repeat)]
        most = statistics.median(maxima)
        rate = most / 2
    reps = [_latency_once(settings, mix, rate, workdir, rep) for rep in range(options.repeat)]
    result: dict[str, Any] = {
        "mix_max_events_per_s": None if most is None else round(most, 1),
        "mix_max_runs": [round(m, 1) for m in maxima],
        "offered_events_per_s": round(rate, 1),
        "alerts": sum(rep["alerts"] for rep in reps),
    }
    for name in (*_QUANTILES, "until_produced_p50_ms", "until_produced_p99_ms"):
        values = [rep[name] for rep in reps if rep[name] is not None]
        result[name] = round(statistics.median(values), 1) if values else None
    result["repetitions"] = reps
    return result


def _latency_once(
    settings: Settings, mix: GeneratedStream, rate: float, workdir: Path, rep: int
) -> dict[str, Any]:
    """One repetition: a fresh worker on topics of its own, ``mix`` offered at ``rate``."""
    lat = _variant(settings, f"bench-latency-{rep}", f"benchlat{rep}.")
    lat = dataclasses.replace(lat, data_dir=str(workdir / f"latency-{rep}"))
    asyncio.run(ensure_topics(lat))
    log_path = workdir / f"latency-{rep}.log"
    process = start_worker(lat, log_path)
    try:
        samples = asyncio.run(_offer(lat, mix, rate, process, log_path))
    finally:
        stop_process(process)
    latencies = sorted(latency for _, latency, _ in samples)
    # Where it went: until the worker produced the alert, and from there to the reader.
    in_worker = sorted(worker for _, _, worker in samples)
    result: dict[str, Any] = {"alerts": len(samples)}
    for name, q in _QUANTILES.items():
        result[name] = _ms(_quantile(latencies, q)) if samples else None
    result["until_produced_p50_ms"] = _ms(_quantile(in_worker, 0.5)) if samples else None
    result["until_produced_p99_ms"] = _ms(_quantile(in_worker, 0.99)) if samples else None
    worst = sorted(samples, key=lambda s: -s[1])[:3]
    result["worst"] = [
        {"sent_s": round(t, 2), "ms": _ms(latency), "until_produced_ms": _ms(w)}
        for t, latency, w in worst
    ]
    print(
        f"  latency      rep {rep + 1}: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms"
        f" over {len(samples)} alerts at {rate:,.0f} events/s",
        flush=True,
    )
    return result


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _latency_mix_max(settings: Settings, mix: GeneratedStream, workdir: Path, rep: int) -> float:
    """The pipeline's events/s on the whole latency mix, produced before the worker starts."""
    top = _variant(settings, f"bench-latency-max-{rep}", f"benchlatmax{rep}.")
    top = dataclasses.replace(top, data_dir=str(workdir / f"latency-max-{rep}"))
    asyncio.run(ensure_topics(top))
    messages = as_recorded(mix.messages, top.topics)
    asyncio.run(produce(top, messages))
    log_path = workdir / f"latency-max-{rep}.log"
    process = start_worker(top, log_path)
    try:
        most = asyncio.run(_watch_commits(top, len(messages), [process], [log_path])).events_per_s
    finally:
        stop_process(process)
    print(f"  latency mix  rep {rep + 1}: {most:>10,.0f} events/s at most", flush=True)
    return most


def latency_mix(events: int, seed: int) -> GeneratedStream:
    """A stream dense in alerts: few customers, many days, half of them deteriorating."""
    customers = max(20, events // 400)
    days = max(30, math.ceil(events / customers / EVENTS_PER_CUSTOMER_DAY))
    stream = generate(
        customers=customers, days=days, seed=seed, malformed=0, deteriorating_share=0.5
    )
    return dataclasses.replace(stream, messages=stream.messages[:events])


async def _offer(
    settings: Settings,
    mix: GeneratedStream,
    rate: float,
    process: subprocess.Popen[bytes],
    log_path: Path,
) -> list[tuple[float, float, float]]:
    """(sent, latency, share of it until the worker produced the alert) per matched alert."""
    messages = as_recorded(mix.messages, settings.topics)
    warmup, measured = messages[:200], messages[200:]
    await produce(settings, warmup)
    await _wait_committed(settings, len(warmup), [process], [log_path])
    consumer = AIOKafkaConsumer(
        settings.topics.notifications,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="latest",
        enable_auto_commit=False,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    await consumer.seek_to_end()
    sent: dict[str, float] = {}
    latencies: list[tuple[float, float, float]] = []
    started = time.time()

    def stamp(index: int, message: Recorded) -> None:
        sent[orjson.loads(message.value)["event_id"]] = time.time()

    try:
        producing = asyncio.create_task(produce(settings, measured, rate, stamp))
        idle_until: float | None = None
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            arrived = time.time()
            for records in batches.values():
                for record in records:
                    alert = orjson.loads(record.value)
                    at = sent.get(alert["trigger"]["event_id"])
                    if at is not None:  # the record's time is when the worker produced it
                        worker = record.timestamp / 1000 - at
                        latencies.append((at - started, arrived - at, worker))
            if producing.done():
                producing.result()
                idle_until = idle_until or time.monotonic() + 5.0
                if time.monotonic() > idle_until:
                    break
            if process.poll() is not None:
                raise RuntimeError(f"the latency worker exited early:\n{_tail(log_path)}")
    finally:
        await consumer.stop()
    return latencies


def _quantile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def state_bytes(sample: list[GeneratedMessage], partitions: int) -> dict[str, float]:
    """Encoded state size per customer after an offline replay of a sample of the mix."""
    topics = Topics()
    messages = as_recorded(sample, topics)
    result = replay(
        messages, decoders(topics), RiskDetector(load_rules(), "scorecard-0"), partitions
    )
    sizes = [len(state.encode()) for state in result.states.values()]
    if not sizes:
        return {}
    return {
        "customers": len(sizes),
        "mean": round(statistics.fmean(sizes), 1),
        "max": max(sizes),
    }


def print_report(result: dict[str, Any]) -> None:
    print("\n== ews bench ==")
    for mode, rate in result["events_per_s_median"].items():
        rss = result["peak_rss_mb_max"].get(mode)
        extra = f"   peak RSS {rss:.0f} MB" if rss else ""
        print(f"  {mode:<12} {rate:>12,.0f} events/s (median){extra}")
    for name, ratio in result["ratios"].items():
        print(f"  {name:<24} {ratio:.2f}x")
    for mode, per_cpu in result["events_per_cpu_s_median"].items():
        cores = result["cores_median"].get(mode)
        print(
            f"  {mode:<12} {per_cpu:>12,.0f} events per worker CPU-second (median),"
            f" on {cores} cores"
        )
    if result["latency"]:
        lat = result["latency"]
        print(
            f"  latency at {lat['offered_events_per_s']:,.0f} events/s"
            f" (the latency mix's maximum: {lat['mix_max_events_per_s'] or '-'} events/s)"
            f" over {lat['alerts']} alerts, medians of {len(lat['repetitions'])}:"
            f" p50 {lat['p50_ms']} ms, p90 {lat['p90_ms']} ms, p99 {lat['p99_ms']} ms,"
            f" p99.9 {lat['p99_9_ms']} ms (until the worker produced the alert: p50"
            f" {lat['until_produced_p50_ms']} ms, p99 {lat['until_produced_p99_ms']} ms);"
            f" p99 of each: {[rep['p99_ms'] for rep in lat['repetitions']]} ms"
        )
    if result["state_bytes_per_customer"]:
        sb = result["state_bytes_per_customer"]
        print(f"  state bytes per customer: mean {sb['mean']}, max {sb['max']}")
