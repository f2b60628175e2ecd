"""Worker heartbeats in Redis: what the web view's health strip shows, and the stream clock.

Every ``interval_s`` seconds each worker writes a small hash ``{prefix}health:{worker id}``
(a :class:`Snapshot`: events applied per second over the interval, consumer lag, dead letters,
alerts, model and rules versions, label counts, and the largest event time it has applied) with a
TTL of three intervals, and stamps its id in the sorted set ``{prefix}health`` (score: the
wall-clock millisecond of the beat; members silent for an hour are dropped, and the set itself
expires with the last beat). A snapshot that exists is live: a worker that stopped beating
disappears within three intervals.

The beat runs as a Faust timer, off the hot path: it reads counters the pipeline keeps anyway.
A Redis outage only skips beats (the sinks' own retries report it on ``/readyz``).

:func:`stream_clock` is the largest event time over live snapshots. Feedback from people (the web
view, ``ews alerts ack``) is stamped with it, since the detectors run on event time: in
production it is the wall clock within the lag; in the demo, whose simulated year runs in
minutes, the wall clock would be months ahead of the stream.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from redis.exceptions import RedisError

from sinks.redis import RedisLayout

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from streams.web import Probes

log = structlog.get_logger(__name__)

INTERVAL_S = 5.0
TTL_INTERVALS = 3
FORGET_AFTER_S = 3600  # index members silent this long are removed by the next beat


def health_key(layout: RedisLayout, worker_id: str) -> str:
    return f"{layout.prefix}health:{worker_id}"


def health_index(layout: RedisLayout) -> str:
    return f"{layout.prefix}health"


def worker_id() -> str:
    """This process: ``hostname:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One worker's beat."""

    worker_id: str
    at: datetime  # wall clock of the beat
    events_per_s: float  # events applied per second since the previous beat
    applied: int
    lag: int  # sum over the worker's input partitions
    dead_letters: int
    alerts: int
    model_version: str
    rules_version: str
    labels_learned: int  # labels behind the model in use
    human_labels: int | None  # of those, from people's feedback (None: not reported)
    labels_matured: int  # matured labels this worker sent to the training topic
    event_time: datetime | None  # the largest event time applied

    def to_fields(self) -> dict[str, str]:
        return {
            "worker_id": self.worker_id,
            "at": _iso(self.at),
            "events_per_s": f"{self.events_per_s:.3f}",
            "applied": str(self.applied),
            "lag": str(self.lag),
            "dead_letters": str(self.dead_letters),
            "alerts": str(self.alerts),
            "model_version": self.model_version,
            "rules_version": self.rules_version,
            "labels_learned": str(self.labels_learned),
            "human_labels": "" if self.human_labels is None else str(self.human_labels),
            "labels_matured": str(self.labels_matured),
            "event_time": "" if self.event_time is None else _iso(self.event_time),
        }

    @classmethod
    def from_fields(cls, fields: Mapping[Any, Any]) -> Snapshot | None:
        """The snapshot a hash holds; None for an empty (expired) or unreadable one."""
        f = {_text(k): _text(v) for k, v in fields.items()}
        try:
            return cls(
                worker_id=f["worker_id"],
                at=datetime.fromisoformat(f["at"]),
                events_per_s=float(f["events_per_s"]),
                applied=int(f["applied"]),
                lag=int(f["lag"]),
                dead_letters=int(f["dead_letters"]),
                alerts=int(f["alerts"]),
                model_version=f["model_version"],
                rules_version=f["rules_version"],
                labels_learned=int(f["labels_learned"]),
                human_labels=int(f["human_labels"]) if f.get("human_labels") else None,
                labels_matured=int(f["labels_matured"]),
                event_time=datetime.fromisoformat(f["event_time"]) if f["event_time"] else None,
            )
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class Health:
    """All live workers together, as the health strip shows them."""

    workers: int
    events_per_s: float
    lag: int
    dead_letters: int
    alerts: int
    model_versions: tuple[str, ...]
    labels_learned: int
    human_labels: int | None
    labels_matured: int
    event_time: datetime | None
    last_beat: datetime | None

    @property
    def stale(self) -> bool:
        return self.workers == 0


def summarize(snapshots: Sequence[Snapshot]) -> Health:
    """Sums of the rates and counters; the newest model's label counts; the latest event time."""
    humans = [s.human_labels for s in snapshots if s.human_labels is not None]
    times = [s.event_time for s in snapshots if s.event_time is not None]
    return Health(
        workers=len(snapshots),
        events_per_s=sum(s.events_per_s for s in snapshots),
        lag=sum(s.lag for s in snapshots),
        dead_letters=sum(s.dead_letters for s in snapshots),
        alerts=sum(s.alerts for s in snapshots),
        model_versions=tuple(sorted({s.model_version for s in snapshots})),
        labels_learned=max((s.labels_learned for s in snapshots), default=0),
        human_labels=max(humans) if humans else None,
        labels_matured=sum(s.labels_matured for s in snapshots),
        event_time=max(times) if times else None,
        last_beat=max((s.at for s in snapshots), default=None),
    )


async def write_snapshot(
    client: aioredis.Redis, layout: RedisLayout, snapshot: Snapshot, interval_s: float
) -> None:
    key = health_key(layout, snapshot.worker_id)
    index = health_index(layout)
    now_ms = int(snapshot.at.timestamp() * 1000)
    ttl_s = max(1, round(interval_s * TTL_INTERVALS))
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping=snapshot.to_fields())  # type: ignore[arg-type]
        pipe.expire(key, ttl_s)
        pipe.zadd(index, {snapshot.worker_id: now_ms})
        pipe.zremrangebyscore(index, "-inf", now_ms - FORGET_AFTER_S * 1000)
        pipe.expire(index, FORGET_AFTER_S)
        await pipe.execute()


async def read_snapshots(client: aioredis.Redis, layout: RedisLayout) -> list[Snapshot]:
    """The live snapshots (their hashes have not expired), by worker id."""
    members = await client.zrange(health_index(layout), 0, -1)
    if not members:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for member in members:
            pipe.hgetall(health_key(layout, _text(member)))
        hashes = await pipe.execute()
    found = (Snapshot.from_fields(fields) for fields in hashes if fields)
    return sorted((s for s in found if s is not None), key=lambda s: s.worker_id)


async def stream_clock(client: aioredis.Redis, layout: RedisLayout) -> datetime | None:
    """The largest event time any live worker has applied; None when none reports one."""
    times = [s.event_time for s in await read_snapshots(client, layout) if s.event_time]
    return max(times) if times else None


async def feedback_time(client: aioredis.Redis, layout: RedisLayout) -> datetime:
    """When feedback given now happens in the stream's time: the stream clock, else (no live
    worker, or Redis unreachable) the wall clock, UTC."""
    try:
        clock = await stream_clock(client, layout)
    except (RedisError, OSError):
        clock = None
    return clock or datetime.now(UTC)


class Heartbeat:
    """Builds and writes this worker's snapshot; :meth:`beat` is called every ``interval_s``."""

    def __init__(
        self,
        client: aioredis.Redis,
        layout: RedisLayout,
        probes: Probes,
        *,
        interval_s: float = INTERVAL_S,
        name: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.layout = layout
        self.probes = probes
        self.interval_s = interval_s
        self.worker_id = name or worker_id()
        self.monotonic = monotonic
        self.wall = wall
        self._last = (monotonic(), 0)  # (when, events applied then)
        self._failing = False

    def snapshot(self) -> Snapshot:
        pipeline = self.probes.pipeline
        counters = pipeline.counters
        detector = pipeline.detector
        params = detector.model.params if detector.model is not None else None
        now = self.monotonic()
        then, applied_then = self._last
        self._last = (now, counters.applied)
        elapsed = now - then
        rate = (counters.applied - applied_then) / elapsed if elapsed > 0 else 0.0
        return Snapshot(
            worker_id=self.worker_id,
            at=self.wall(),
            events_per_s=max(0.0, rate),
            applied=counters.applied,
            lag=sum(self.probes.lag().values()),
            dead_letters=counters.dead_letters,
            alerts=counters.alerts,
            model_version=detector.model_version,
            rules_version=detector.rules.version,
            labels_learned=params.n_labels if params is not None else 0,
            human_labels=params.n_human_labels if params is not None else None,
            labels_matured=counters.examples - counters.human_labels,
            event_time=pipeline.event_time,
        )

    async def beat(self) -> None:
        """Write one snapshot; a Redis failure is logged once and the beat skipped."""
        snapshot = self.snapshot()
        try:
            await write_snapshot(self.client, self.layout, snapshot, self.interval_s)
        except (RedisError, OSError) as exc:
            if not self._failing:
                log.warning("health_beat_failed", error=str(exc)[:200])
            self._failing = True
            return
        self._failing = False


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
