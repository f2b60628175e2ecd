"""``ews worker``: check the services, make sure the topics exist, run one Faust worker."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Mapping

import faust
import redis
import structlog
import uvloop

from config import native
from config.rules import Rules
from config.settings import Settings
from sinks.redis import safe_url
from streams.app import create_app
from streams.topics import ensure_topics

log = structlog.get_logger(__name__)

GC_THRESHOLDS = (50_000, 20, 10)
"""The worker's cyclic garbage collector runs after this many container allocations (Python's
default: 700, 10, 10). Almost everything the hot path allocates is freed by reference counting;
with the default, collections took about 10 % of a worker at full rate (``ews bench``), and each
full collection walks every decoded state in the cache, stalling alerts behind it."""


class PreflightError(RuntimeError):
    """A service the worker needs is unreachable; the message names it."""


def preflight(
    settings: Settings,
    loop: asyncio.AbstractEventLoop,
    changelogs: Mapping[str, int] | None = None,
    timeout_s: float = 10.0,
) -> None:
    """Fail fast, in one line, when Redis or Kafka cannot be reached; create missing topics,
    the tables' ``changelogs`` among them (see :func:`streams.topics.ensure_topics`), on the
    worker's ``loop``."""
    client = redis.Redis.from_url(
        settings.redis_url,
        **settings.redis_client_options(),
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
    )
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        raise PreflightError(
            f"cannot reach Redis at {safe_url(settings.redis_url)}: {_first_line(exc)}"
        ) from None
    finally:
        client.close()
    quiet = logging.getLogger("aiokafka")
    previous = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its connection errors would repeat ours, with tracebacks
    try:
        loop.run_until_complete(ensure_topics(settings, timeout_s=timeout_s, changelogs=changelogs))
    except Exception as exc:  # one line for people, whatever the client raised
        raise PreflightError(_first_line(exc)) from None
    finally:
        quiet.setLevel(previous)


def run_worker(settings: Settings, rules: Rules) -> None:
    """Run until stopped (SIGINT/SIGTERM). Exits the process when Faust stops."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # also for Faust's consumer thread
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = create_app(settings, rules)
    preflight(settings, loop, changelogs(app))
    gc.freeze()  # what startup built lives as long as the process: never walk it again
    gc.set_threshold(*GC_THRESHOLDS)
    log.info(
        "worker_starting",
        app_id=settings.app_id,
        kafka=settings.kafka_bootstrap,
        redis=safe_url(settings.redis_url),
        partitions=settings.partitions,
        rules_version=rules.version,
        model_version=settings.model_version,
        compiled=native.loaded(),  # config.native: the mypyc build, or the Python sources
    )
    level = "warn" if settings.log_level in {"warn", "warning", "error"} else "info"
    faust.Worker(app, loglevel=level, quiet=True).execute_from_commandline()


def changelogs(app: faust.App) -> dict[str, int]:
    """The changelog topic (name: partitions) of each table the app declares."""
    return {
        table.changelog_topic.get_topic_name(): table.partitions or app.conf.topic_partitions
        for table in app.tables.values()
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]
