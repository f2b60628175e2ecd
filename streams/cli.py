"""The ``ews`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

import orjson
import redis
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from config.rules import RulesError, load_rules
from config.settings import Settings, SettingsError, load_settings
from sinks.redis import RedisLayout, safe_url
from streams.logs import configure_logging
from streams.render import ProgressLine, format_alert, format_figures, format_history_entry


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings(os.environ, file=args.config)
    except SettingsError as exc:
        print(f"ews: bad configuration: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    result: int = args.handler(settings, args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ews", description="Credit early-warning streams")
    parser.add_argument("--config", help="TOML settings file (else EWS_CONFIG)")
    sub = parser.add_subparsers(dest="command")

    worker = sub.add_parser("worker", help="run one stream worker against Kafka and Redis")
    worker.set_defaults(handler=_worker)

    topics = sub.add_parser("topics", help="manage topics")
    topics_sub = topics.add_subparsers(dest="topics_command", required=True)
    create = topics_sub.add_parser("create", help="create the topics, co-partitioned")
    create.set_defaults(handler=_topics_create)

    demo = sub.add_parser("demo", help="start local services, a worker and the simulator")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    demo.add_argument("--summary-json", help="write the end-of-run summary here")
    demo.add_argument("--customers", type=int, default=100)
    demo.add_argument("--days", type=int, default=365, help="days of event time to simulate")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--rate", type=float, default=1000.0, help="events per second")
    demo.add_argument("--malformed", type=int, default=5, help="bad messages to inject")
    demo.add_argument("--no-malformed", action="store_const", const=0, dest="malformed")
    demo.add_argument("--broker", choices=("auto", "kafka", "tansu"), default="auto")
    demo.add_argument(
        "--web-port", type=int, default=8080, help="web view port (taken: a free one; 0: none)"
    )
    demo.set_defaults(handler=_demo)

    bench = sub.add_parser(
        "bench", help="measure the pipeline against aiokafka and stock Faust on one event mix"
    )
    # An option left out keeps its default in streams.bench.BenchOptions (`ews bench --help`
    # stays light: it does not import the benchmark).
    bench.add_argument("--events", type=int, help="events in the mix")
    bench.add_argument("--customers", type=int, help="customers in the mix")
    bench.add_argument("--repeat", type=int, help="repetitions; medians are quoted")
    bench.add_argument(
        "--modes",
        help="comma separated; add pipeline-2w for two workers on twice the partitions",
    )
    bench.add_argument(
        "--latency-rate", type=float, help="offered events/s (default: half the pipeline's)"
    )
    bench.add_argument("--latency-events", type=int, help="events in the latency mix")
    bench.add_argument("--store", choices=("memory", "rocksdb"), help="the pipeline's store")
    bench.add_argument("--seed", type=int)
    bench.add_argument("--json", dest="json_path", help="write the results here")
    bench.add_argument("--broker", choices=("auto", "kafka", "tansu"))
    bench.set_defaults(handler=_bench)

    simulate = sub.add_parser(
        "simulate", help="a synthetic bank's events, to a file or to Kafka, with ground truth"
    )
    simulate.add_argument("--customers", type=int, default=10_000)
    simulate.add_argument("--months", type=int, default=12, help="event-time months (30.4 days)")
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--start", default="2025-01-01", help="first day (YYYY-MM-DD)")
    simulate.add_argument("--deteriorating-share", type=float, default=0.12)
    simulate.add_argument("--recovery-share", type=float, default=0.25)
    simulate.add_argument(
        "--malformed-share", type=float, default=0.0005, help="share of broken messages"
    )
    simulate.add_argument("--out", help="write a recording here (JSON lines)")
    simulate.add_argument("--truth", help="write the ground truth here (JSON lines)")
    simulate.add_argument("--kafka", action="store_true", help="produce to the input topics")
    simulate.add_argument("--rate", type=float, help="at most this many events per second")
    simulate.add_argument(
        "--speedup", type=float, help="event-time seconds per wall second (Kafka only)"
    )
    simulate.set_defaults(handler=_simulate)

    datasets = sub.add_parser("datasets", help="public data sets as recordings")
    datasets_sub = datasets.add_subparsers(dest="datasets_command", required=True)
    taiwan = datasets_sub.add_parser(
        "taiwan", help="UCI default of credit card clients (Taiwan, 2005) as a recording"
    )
    taiwan.add_argument("csv", help="UCI_Credit_Card.csv")
    taiwan.add_argument("--out", required=True, help="write the recording here (JSON lines)")
    taiwan.add_argument("--truth", required=True, help="write the truth here (JSON lines)")
    taiwan.add_argument("--seed", type=int, default=7, help="the customers' order")
    taiwan.add_argument("--limit", type=int, help="only the first N customers of that order")
    taiwan.set_defaults(handler=_datasets_taiwan)

    replay = sub.add_parser(
        "replay", help="run the detectors over a recorded stream, offline or through Kafka"
    )
    replay.add_argument("--input", required=True, help="recording (JSON lines)")
    replay.add_argument("--report", required=True, help="write the alerts and counts here (JSON)")
    replay.add_argument(
        "--via-kafka", action="store_true", help="through a broker and a real worker instead"
    )
    replay.add_argument("--broker", choices=("auto", "kafka", "tansu"), default="auto")
    replay.set_defaults(handler=_replay)

    backtest = sub.add_parser("backtest", help="replay a recording and measure it against truth")
    backtest.add_argument("--input", required=True, help="recording (JSON lines)")
    backtest.add_argument("--truth", required=True, help="ground truth (JSON lines)")
    backtest.add_argument("--report", required=True, help="directory for report.json and .html")
    backtest.add_argument("--challenger", help="a second rules file, run on the same input")
    backtest.set_defaults(handler=_backtest)

    alerts = sub.add_parser("alerts", help="read alerts")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    tail = alerts_sub.add_parser("tail", help="follow the notifications topic")
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--max", type=int, help="stop after this many alerts")
    tail.add_argument("--timeout", type=float, help="stop after this many idle seconds")
    tail.set_defaults(handler=_alerts_tail)
    ack = alerts_sub.add_parser("ack", help="acknowledge an alert (a feedback event)")
    ack.add_argument("alert_id")
    ack.add_argument("--actor", required=True, help="who acknowledges (recorded in the audit)")
    ack.add_argument("--note")
    ack.add_argument(
        "--customer", help="the alert's customer (else looked up in Redis by the alert id)"
    )
    ack.set_defaults(handler=_alerts_ack)

    deadletter = sub.add_parser("deadletter", help="the dead-letter topic")
    deadletter_sub = deadletter.add_subparsers(dest="deadletter_command", required=True)
    replay_letters = deadletter_sub.add_parser(
        "replay", help="send dead letters since the last replay back to their input topics"
    )
    replay_letters.add_argument(
        "--dry-run", action="store_true", help="count them by error code; send nothing"
    )
    replay_letters.set_defaults(handler=_deadletter_replay)

    redis_cmd = sub.add_parser("redis", help="manage the Redis view")
    redis_sub = redis_cmd.add_subparsers(dest="redis_command", required=True)
    rebuild = redis_sub.add_parser(
        "rebuild",
        help="restore customers, watch-list, alert stream and audit trail from the topics",
    )
    rebuild.add_argument(
        "--force", action="store_true", help="even while workers of the group are running"
    )
    rebuild.set_defaults(handler=_redis_rebuild)

    customer = sub.add_parser("customer", help="read one customer's state")
    customer_sub = customer.add_subparsers(dest="customer_command", required=True)
    show = customer_sub.add_parser("show", help="the Redis state of one customer")
    show.add_argument("customer_id")
    show.set_defaults(handler=_customer_show)
    snooze = customer_sub.add_parser("snooze", help="mute a customer's alerts until a date")
    snooze.add_argument("customer_id")
    snooze.add_argument("--until", required=True, help="YYYY-MM-DD (midnight UTC) or a UTC time")
    snooze.add_argument("--actor", required=True, help="who snoozes (recorded in the audit)")
    snooze.add_argument("--reason-code", help="mute only alerts led by this reason code")
    snooze.add_argument("--note")
    snooze.set_defaults(handler=_customer_snooze)

    web_cmd = sub.add_parser("web", help="the live web view (alerts, watch-list, customers)")
    web_cmd.add_argument("--host", default="127.0.0.1")
    web_cmd.add_argument("--port", type=int, default=8080)
    web_cmd.set_defaults(handler=_web)
    return parser


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from streams.worker import PreflightError, run_worker

    try:
        rules = load_rules(settings.rules_file)
    except RulesError as exc:
        print(f"ews worker: bad rules: {exc}", file=sys.stderr)
        return 2
    try:
        run_worker(settings, rules)
    except PreflightError as exc:
        print(f"ews worker: {exc}", file=sys.stderr)
        return 2
    return 0


def _topics_create(settings: Settings, args: argparse.Namespace) -> int:
    from streams.topics import TopicError, ensure_topics

    try:
        counts = asyncio.run(ensure_topics(settings))
    except TopicError as exc:
        print(f"ews topics create: {exc}", file=sys.stderr)
        return 2
    for name, partitions in sorted(counts.items()):
        print(f"{name}\t{partitions} partitions")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from streams.demo import DemoOptions, run_demo

    options = DemoOptions(
        duration_s=args.duration,
        summary_json=args.summary_json,
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        rate=args.rate,
        malformed=args.malformed,
        broker=args.broker,
        web_port=args.web_port,
    )
    return run_demo(settings, options)


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    from streams.bench import BenchOptions, run_bench

    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(BenchOptions)
        if getattr(args, f.name, None) is not None
    }
    if args.modes is not None:
        given["modes"] = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    options = BenchOptions(**given)
    return run_bench(settings, options)


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from streams.demo import produce
    from streams.replay import Recorded
    from streams.simulator import Simulation, input_topic, simulate, to_jsonl, truth_to_jsonl

    if bool(args.out) == bool(args.kafka):
        print("ews simulate: give exactly one of --out FILE and --kafka", file=sys.stderr)
        return 2
    try:
        simulation = Simulation(
            customers=args.customers,
            days=round(args.months * 30.4),
            seed=args.seed,
            deteriorating_share=args.deteriorating_share,
            recovery_share=args.recovery_share,
            malformed_share=args.malformed_share,
            start=date.fromisoformat(args.start),
        )
    except ValueError as exc:
        print(f"ews simulate: {exc}", file=sys.stderr)
        return 2
    truth: dict[str, Any] = {}
    messages = simulate(simulation, truth)
    if args.out:
        count = to_jsonl(messages, args.out)
    else:
        clock: dict[str, datetime] = {}

        def records() -> Iterator[Recorded]:
            for message in messages:
                clock.setdefault("first", message.event_time)
                clock["now"] = message.event_time
                yield Recorded(
                    input_topic(settings.topics, message.stream), message.key, message.value
                )

        def due_at(index: int, message: Recorded) -> float:
            return (clock["now"] - clock["first"]).total_seconds() / float(args.speedup)

        pace = due_at if args.speedup else None
        count = asyncio.run(produce(settings, records(), args.rate, due_at=pace))
    if args.truth:
        truth_to_jsonl(truth, args.truth)
    bad = sum(1 for t in truth.values() if t.first_30dpd is not None)
    print(
        f"{count:,} messages from {len(truth):,} customers over {simulation.days} days; "
        f"{sum(1 for t in truth.values() if t.deteriorates):,} deteriorate, {bad:,} reach 30+ DPD"
    )
    return 0


def _datasets_taiwan(settings: Settings, args: argparse.Namespace) -> int:
    from streams.datasets import write_taiwan

    try:
        counts = write_taiwan(args.csv, args.out, args.truth, args.seed, args.limit)
    except (OSError, ValueError) as exc:
        print(f"ews datasets taiwan: {exc}", file=sys.stderr)
        return 2
    print(", ".join(f"{count:,} {name}" for name, count in counts.items()))
    return 0


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from streams.replaying import replay_file, replay_via_kafka

    try:
        if args.via_kafka:
            report = replay_via_kafka(settings, args.input, args.broker)
        else:
            report = replay_file(settings, args.input, progress=ProgressLine(args.input))
    except (OSError, ValueError, RulesError) as exc:
        print(f"ews replay: {exc}", file=sys.stderr)
        return 2
    with open(args.report, "wb") as out:
        out.write(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(
        f"{report['messages']} messages, {report['dead_letters']} dead letters, "
        f"{len(report['alerts'])} alerts -> {args.report}"
    )
    return 0


def _backtest(settings: Settings, args: argparse.Namespace) -> int:
    from streams.backtest import run_backtest

    try:
        report = run_backtest(
            settings,
            args.input,
            args.truth,
            args.report,
            args.challenger,
            progress=ProgressLine(args.input),
        )
    except (OSError, ValueError, RulesError) as exc:
        print(f"ews backtest: {exc}", file=sys.stderr)
        return 2
    for variant in report["variants"]:
        print(format_figures(variant))
    print(f"report: {os.path.join(args.report, 'report.html')}")
    return 0


def _alerts_tail(settings: Settings, args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        asyncio.run(tail_alerts(settings, args.from_beginning, args.max, args.timeout))
    return 0


async def tail_alerts(
    settings: Settings,
    from_beginning: bool = False,
    limit: int | None = None,
    idle_timeout_s: float | None = None,
) -> int:
    """Print alerts from the notifications topic as they arrive; return how many were shown."""
    consumer = AIOKafkaConsumer(
        settings.topics.notifications,
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        **settings.kafka_client_options(),
    )
    await consumer.start()
    shown = 0
    colour = sys.stdout.isatty()
    try:
        while limit is None or shown < limit:
            timeout_ms = int((idle_timeout_s or 1.0) * 1000)
            records = await consumer.getmany(timeout_ms=timeout_ms)
            if not records and idle_timeout_s is not None:
                break
            for batch in records.values():
                for record in batch:
                    print(format_alert(orjson.loads(record.value), colour=colour), flush=True)
                    shown += 1
    finally:
        await consumer.stop()
    return shown


def _deadletter_replay(settings: Settings, args: argparse.Namespace) -> int:
    from streams.deadletters import replay_dead_letters

    report = asyncio.run(replay_dead_letters(settings, dry_run=args.dry_run))
    codes = ", ".join(f"{code} {n}" for code, n in sorted(report.by_error.items())) or "none"
    verb = "would replay" if args.dry_run else "replayed"
    print(f"{report.read} dead letters since the last replay ({codes}); {verb} {report.replayed}")
    if report.gone:
        print(f"{report.gone} truncated ones left out: their input topic no longer holds them")
    return 0


def _redis_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.base import SinkUnavailable
    from streams.rebuild import RebuildRefused, rebuild

    try:
        report = asyncio.run(rebuild(settings, force=args.force))
    except (RebuildRefused, SinkUnavailable) as exc:
        print(f"ews redis rebuild: {exc}", file=sys.stderr)
        return 2
    print(
        f"{report.messages} notifications, {report.distinct_alerts} distinct alerts, "
        f"{report.written} written to Redis at {safe_url(settings.redis_url)}; "
        f"{report.feedback_written} audit entries from {settings.topics.feedback}"
    )
    if report.missing_customers:
        print(
            f"{report.missing_customers} customers were notified but have no alert left on "
            f"{settings.topics.notifications} (retention too short?)",
            file=sys.stderr,
        )
    return 0


def _customer_show(settings: Settings, args: argparse.Namespace) -> int:
    layout = RedisLayout(settings.redis_prefix)
    client = redis.Redis.from_url(
        settings.redis_url, **settings.redis_client_options(), decode_responses=True
    )
    try:
        state: dict[str, str] = client.hgetall(layout.customer(args.customer_id))  # type: ignore[assignment]
        history: list[str] = client.lrange(layout.history(args.customer_id), 0, -1)  # type: ignore[assignment]
        rank: int | None = client.zrevrank(layout.watchlist, args.customer_id)  # type: ignore[assignment]
    except (redis.RedisError, OSError) as exc:
        print(
            f"ews customer show: cannot reach Redis at {safe_url(settings.redis_url)}: {exc}",
            file=sys.stderr,
        )
        return 2
    if not state:
        print(f"no state for customer {args.customer_id}")
        return 1
    print(f"customer {args.customer_id}")
    for key in ("level", "score", "updated_at", "model_version", "rules_version", "last_alert_id"):
        print(f"  {key:<14} {state.get(key, '')}")
    print(f"  {'watch-list':<14} {'#' + str(rank + 1) if rank is not None else 'not listed'}")
    for reason in orjson.loads(state.get("reasons", "[]")):
        print(f"  reason         {reason['code']}: {reason['text']}")
    print(f"  history ({len(history)} alerts and answers, newest first)")
    for item in history:
        print("    " + format_history_entry(orjson.loads(item)))
    return 0


def _alerts_ack(settings: Settings, args: argparse.Namespace) -> int:
    from streams.feedback_commands import NotFound, acknowledge

    try:
        message = asyncio.run(
            acknowledge(settings, args.alert_id, args.actor, args.note, args.customer)
        )
    except (NotFound, ValueError) as exc:
        print(f"ews alerts ack: {exc}", file=sys.stderr)
        return 2
    except (redis.RedisError, OSError) as exc:
        print(
            f"ews alerts ack: cannot reach Redis at {safe_url(settings.redis_url)}: {exc}",
            file=sys.stderr,
        )
        return 2
    except KafkaError as exc:
        print(f"ews alerts ack: not sent, Kafka did not acknowledge: {exc}", file=sys.stderr)
        return 2
    print(
        f"acknowledged {message['alert_id']} of customer {message['customer_id']} "
        f"(feedback {message['event_id']}, stamped {message['ts']})"
    )
    return 0


def _customer_snooze(settings: Settings, args: argparse.Namespace) -> int:
    from streams.feedback_commands import snooze
    from streams.webview import parse_until

    try:
        until = parse_until(args.until)
        message = asyncio.run(
            snooze(settings, args.customer_id, until, args.actor, args.reason_code, args.note)
        )
    except ValueError as exc:
        print(f"ews customer snooze: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"ews customer snooze: not sent, Kafka did not acknowledge: {exc}", file=sys.stderr)
        return 2
    print(
        f"snoozed {message['customer_id']} until {message['until']} "
        f"(feedback {message['event_id']}, stamped {message['ts']})"
    )
    return 0


def _web(settings: Settings, args: argparse.Namespace) -> int:
    from streams.webview import run_web

    run_web(settings, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
