"""The web view against a real redis-server, on keys written by the real RedisSink and heartbeat."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

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
from streams.localstack import ApacheKafka, RedisServer
from streams.topics import ensure_topics
from streams.webview import create_app
from tests.support import isolated_settings, read_topic

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
    assert sink.url not in feed and "redis://" not in feed  # no connection details in pages

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


async def test_an_empty_feed_goes_live_from_the_stream_start(client: TestClient) -> None:  # type: ignore[type-arg]
    """No alert yet: live updates start at 0-0, so the first alert cannot slip in between the
    page and its event stream; no worker beats under this prefix, so the strip says stale."""
    page = await (await client.get("/")).text()
    assert 'data-last-id="0-0"' in page and "No alerts yet." in page
    assert "Stale" in page


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


# -- feedback reaches Kafka: the form and the terminal commands ------------------------------


@pytest.fixture
def kafka_settings(kafka: ApacheKafka, settings: Settings) -> Settings:
    return isolated_settings(
        kafka.bootstrap, settings.redis_url, redis_prefix=settings.redis_prefix
    )


def feedback_on_topic(settings: Settings) -> list[dict[str, Any]]:
    return [orjson.loads(v) for _, v in asyncio.run(read_topic(settings, settings.topics.feedback))]


@pytest.mark.kafka
async def test_the_form_produces_feedback_stamped_with_the_stream_clock(
    kafka_settings: Settings,
) -> None:
    """A valid post is on the feedback topic (acked by the broker) before the 303 back."""
    sink = redis_sink(kafka_settings)
    await seed(sink)
    await ensure_topics(kafka_settings)
    async with TestClient(TestServer(create_app(kafka_settings))) as client:
        response = await client.post(
            "/customers/c0001/feedback",
            data={"action": "snooze", "actor": "Dana", "until": "2025-03-20", "note": "on leave"},
            allow_redirects=False,
        )
        assert response.status == 303
        assert response.headers["Location"] == "/customers/c0001?done=snooze"
        page = await (await client.get(response.headers["Location"])).text()
        assert "Snooze sent." in page
    await sink.close()
    (message,) = await asyncio.to_thread(feedback_on_topic, kafka_settings)
    assert (message["customer_id"], message["action"], message["actor"]) == (
        "c0001",
        "snooze",
        "Dana",
    )
    assert message["ts"] == "2025-03-04T12:00:00.000Z"  # the heartbeat's event time, not now
    assert message["until"] == "2025-03-20T00:00:00.000Z" and message["note"] == "on leave"


@pytest.mark.kafka
def test_terminal_commands_ack_an_alert_and_snooze_a_customer(kafka_settings: Settings) -> None:
    """``ews alerts ack`` finds the alert's customer in Redis; ``ews customer snooze`` sends
    until and reason code; both are stamped with the stream clock."""

    async def seeded() -> Alert:
        sink = redis_sink(kafka_settings)
        try:
            first, *_ = await seed(sink)
        finally:
            await sink.close()
        await ensure_topics(kafka_settings)
        return first

    first = asyncio.run(seeded())
    env = {**os.environ, **kafka_settings.env_vars}
    ews = [sys.executable, "-m", "streams.cli"]
    ack = subprocess.run(
        [*ews, "alerts", "ack", first.alert_id, "--actor", "Sam", "--note", "called"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ack.returncode == 0, ack.stderr
    assert "of customer c0001" in ack.stdout
    snooze = subprocess.run(
        [*ews, "customer", "snooze", "c0002", "--until", "2025-04-01", "--actor", "Sam",
         "--reason-code", "DPD"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert snooze.returncode == 0, snooze.stderr
    unknown = subprocess.run(
        [*ews, "alerts", "ack", "0" * 32, "--actor", "Sam"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unknown.returncode == 2 and "--customer" in unknown.stderr

    sent = feedback_on_topic(kafka_settings)
    by_action = {m["action"]: m for m in sent}
    assert len(sent) == 2 and set(by_action) == {"acknowledge", "snooze"}
    assert by_action["acknowledge"]["customer_id"] == "c0001"
    assert by_action["acknowledge"]["alert_id"] == first.alert_id
    assert by_action["acknowledge"]["note"] == "called"
    assert by_action["snooze"]["reason_code"] == "DPD"
    assert by_action["snooze"]["until"] == "2025-04-01T00:00:00.000Z"
    assert {m["ts"] for m in sent} == {"2025-03-04T12:00:00.000Z"}
