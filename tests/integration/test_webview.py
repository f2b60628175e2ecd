"""The web view against a real redis-server, on keys written by the real RedisSink and heartbeat."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from config.settings import Settings, load_settings
from detectors.alert import Alert, AlertKind, Level, Reason, Trigger, alert_id
from detectors.events import Feedback, FeedbackAction
from sinks.base import Outgoing
from sinks.redis import RedisLayout, RedisSink, redis_sink
from streams.feedback_commands import NotFound, alert_customer
from streams.health import Snapshot, stream_clock, write_snapshot
from streams.localstack import RedisServer
from streams.webview import create_app

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EVIL = "<script>alert(1)</script>"


def make_alert(customer_id: str, level: Level, score: float, hours: int, **extra: str) -> Alert:
    kind = AlertKind.ESCALATED if extra.get("escalates") else AlertKind.RAISED
    return Alert(
        alert_id=alert_id(customer_id, kind, level, f"ev-{hours}", "rules-1", "scorecard-0"),
        customer_id=customer_id,
        kind=kind,
        level=level,
        previous_level=Level.NONE,
        score=score,
        reasons=(Reason("DPD", f"{hours} days past due {EVIL}", float(hours), 1.0),),
        trigger=Trigger(f"ev-{hours}", "t.repayments", 0, hours),
        event_time=T0 + timedelta(hours=hours),
        model_version="scorecard-0",
        rules_version="rules-1",
        escalates=extra.get("escalates", ""),
    )


def outgoing(alert: Alert) -> Outgoing:
    return Outgoing(alert, orjson.dumps(alert.to_dict(datetime.now(UTC))))


def snapshot(worker: str, event_time: datetime) -> Snapshot:
    return Snapshot(
        worker_id=worker,
        at=datetime.now(UTC),
        events_per_s=250.0,
        applied=5000,
        lag=12,
        dead_letters=3,
        alerts=4,
        model_version="scorecard-0",
        rules_version="rules-1",
        labels_learned=80,
        human_labels=2,
        labels_matured=78,
        event_time=event_time,
    )


@pytest.fixture
def settings(redis_server: RedisServer) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return load_settings(
        {},
        redis_url=redis_server.url,
        redis_prefix=f"w{tag}:",
        kafka_bootstrap="127.0.0.1:9",  # nothing listens: these tests send no feedback
    )


@pytest.fixture
async def sink(settings: Settings) -> AsyncIterator[RedisSink]:
    sink = redis_sink(settings)
    await sink.start()
    yield sink
    await sink.close()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def seed(sink: RedisSink) -> list[Alert]:
    """Two customers' alerts (the second escalated for an SLA breach), one with a hostile id,
    an acknowledgement, and a worker heartbeat."""
    first = make_alert("c0001", Level.AMBER, 0.52, 1)
    breach = make_alert("c0002", Level.RED, 0.81, 50, escalates="f" * 32)
    hostile = make_alert(EVIL, Level.WATCH, 0.22, 2)
    later = make_alert("c0001", Level.RED, 0.77, 30)
    await sink.write([outgoing(a) for a in (first, hostile, breach, later)])
    ack = Feedback(
        "fb-1", "c0001", T0 + timedelta(hours=3), FeedbackAction.ACKNOWLEDGE, "Dana", first.alert_id
    )
    await sink.write_feedback([replace(ack, note=f"called {EVIL}")])
    await write_snapshot(sink.client, sink.layout, snapshot("w1", T0 + timedelta(days=3)), 5.0)
    return [first, hostile, breach, later]


async def test_pages_render_what_the_sink_wrote(sink: RedisSink, client: TestClient) -> None:  # type: ignore[type-arg]
    """Feed newest first with the SLA breach marked, watch-list by score, customer page with
    reasons, alerts, audit trail and forms, health strip from the heartbeat, ids escaped."""
    first, hostile, breach, later = await seed(sink)

    feed = await (await client.get("/")).text()
    order = [feed.index(f'data-level="{a.level.label}"') for a in (later, breach, hostile)]
    assert order == sorted(order), "newest first"
    assert "SLA breach" in feed
    assert "&lt;script&gt;" in feed and "<script>alert" not in feed
    assert "<dd>250</dd>" in feed and "Stale" not in feed  # events/s from the heartbeat
    assert "2 from people" in feed

    watch = await (await client.get("/watchlist")).text()
    assert watch.index(">c0002<") < watch.index(">c0001<") < watch.index("&lt;script&gt;")

    response = await client.get("/customers/c0001")
    assert response.status == 200
    page = await response.text()
    assert "30 days past due" in page  # the reason, in plain language
    assert "Acknowledged by Dana" in page and "called &lt;script&gt;" in page
    assert f'value="acknowledge:{later.alert_id}"' in page
    assert f'value="acknowledge:{first.alert_id}"' not in page
    assert 'value="2025-03-11"' in page  # snooze default: stream clock + 7 days
    assert "ev-30" in page  # the trigger event

    hostile_page = await client.get("/customers/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert hostile_page.status == 200
    assert "<script>alert" not in await hostile_page.text()
    assert (await client.get("/customers/nobody")).status == 404


async def test_health_strip_is_stale_without_a_live_heartbeat(client: TestClient) -> None:  # type: ignore[type-arg]
    """No worker beats under this prefix: the strip says so."""
    assert "Stale" in await (await client.get("/")).text()


async def test_feed_receives_new_alerts_over_server_sent_events(
    sink: RedisSink,
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    """An alert written after the page loaded arrives as an event with its stream id."""
    await seed(sink)
    entries = await sink.client.xrevrange(sink.layout.alerts, count=1)
    newest = entries[0][0].decode()
    response = await client.get(f"/events?after={newest}")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    await sink.write([outgoing(make_alert("c0099", Level.RED, 0.9, 60))])
    received = b""
    async with asyncio.timeout(15):
        while b"c0099" not in received:
            received += await response.content.readany()
    assert b"event: alert" in received and b"event: health" in received
    assert b"c0001" not in received.split(b"event: alert", 1)[1], "only entries after the page's"
    response.close()


async def test_bad_feedback_posts_are_refused(sink: RedisSink, client: TestClient) -> None:  # type: ignore[type-arg]
    """No actor: 400 with the reason; a post from another site: 403; unknown customer: 404."""
    await seed(sink)
    response = await client.post("/customers/c0001/feedback", data={"action": "resolve"})
    assert response.status == 400
    assert "actor" in await response.text()
    cross = await client.post(
        "/customers/c0001/feedback",
        data={"action": "resolve", "actor": "Mallory"},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status == 403
    unknown = await client.post("/customers/nobody/feedback", data={"action": "resolve"})
    assert unknown.status == 404


async def test_alert_ids_lead_to_their_customer_and_clock_to_the_stream(sink: RedisSink) -> None:
    """``ews alerts ack`` finds an alert's customer by its dedupe key; the stream clock is the
    latest event time over live heartbeats."""
    first, hostile, *_ = await seed(sink)
    layout = RedisLayout(sink.layout.prefix)
    assert await alert_customer(sink.client, layout, first.alert_id) == "c0001"
    assert await alert_customer(sink.client, layout, hostile.alert_id) == EVIL
    with pytest.raises(NotFound):
        await alert_customer(sink.client, layout, "0" * 32)
    await write_snapshot(sink.client, layout, snapshot("w2", T0 + timedelta(days=9)), 5.0)
    assert await stream_clock(sink.client, layout) == T0 + timedelta(days=9)
