"""Feedback changes what is notified, on a real Apache Kafka broker and a real redis-server.

Three customers each owe an instalment due 2025-01-10 and never pay; a busy neighbour moves
the partitions' clocks. Unanswered, each reaches amber at the 2025-02-09 sweep and is
escalated for breaching the amber SLA two days later. ``acked`` is acknowledged in time, so its
alert is never escalated; ``snoozed`` is snoozed until March, so its amber comes only then;
``ignored`` gets the SLA breach (and ``snoozed`` one for its March alert). The worker's alerts
equal the offline replay's, feedback included, and every answer is in the customer's Redis
history with its actor.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import redis

from config.settings import Settings
from sinks.redis import RedisLayout
from streams.feedback import feedback_message
from streams.localstack import ApacheKafka, RedisServer
from streams.rebuild import group_members
from streams.replay import Recorded
from tests.support import (
    expected,
    isolated_settings,
    notification_alerts,
    process_with_worker,
    redis_alerts,
    redis_history,
    wait_until,
)
from tests.unit import test_sweep as inputs

pytestmark = pytest.mark.kafka

AMBER_AT = datetime(2025, 2, 9, tzinfo=UTC)
SNOOZE_UNTIL = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def settings(kafka: ApacheKafka, redis_server: RedisServer) -> Settings:
    """One partition: the busy neighbour's events move every debtor's clock."""
    return isolated_settings(kafka.bootstrap, redis_server.url, partitions=1)


def _on(settings: Settings, messages: list[Recorded]) -> list[Recorded]:
    """The same messages on this test's (prefixed) topics."""
    names = {
        inputs.TOPICS.transactions: settings.topics.transactions,
        inputs.TOPICS.repayments: settings.topics.repayments,
        inputs.TOPICS.feedback: settings.topics.feedback,
    }
    return [Recorded(names[m.topic], m.key, m.value) for m in messages]


def _answer(
    settings: Settings, customer: str, action: str, ts: datetime, **extra: object
) -> Recorded:
    body = feedback_message(customer, action, "ops-anna", ts, note="called the customer", **extra)  # type: ignore[arg-type]
    return Recorded(settings.topics.feedback, customer.encode(), orjson.dumps(body))


def _merge_order(settings: Settings, messages: list[Recorded]) -> list[Recorded]:
    rank = {settings.topics.feedback: 1, settings.topics.repayments: 2}

    def key(m: Recorded) -> tuple[str, int, str]:
        body = orjson.loads(m.value)
        return (body["ts"], rank.get(m.topic, 3), body["event_id"])

    return sorted(messages, key=key)


def test_feedback_stops_escalation_and_snooze_mutes_on_a_real_worker(
    settings: Settings, artifacts: Path
) -> None:
    debtors = ["acked", "ignored", "snoozed"]
    base = _on(
        settings,
        [inputs.payment(c, 1, date(2025, 1, 10), "0.00") for c in debtors]
        + inputs.daily_spend("busy", 70),
    )
    unanswered = expected(base, settings).alerts
    (acked_amber,) = [a for a in unanswered if a.customer_id == "acked" and not a.sla_breach]
    assert acked_amber.event_time == AMBER_AT
    feedback = [
        _answer(
            settings,
            "acked",
            "acknowledge",
            AMBER_AT + timedelta(hours=13),
            alert_id=acked_amber.alert_id,
        ),
        _answer(
            settings, "snoozed", "snooze", datetime(2025, 2, 1, tzinfo=UTC), until=SNOOZE_UNTIL
        ),
    ]
    messages = _merge_order(settings, base + feedback)
    want = expected(messages, settings).alerts
    process_with_worker(settings, messages, artifacts / "worker.log")

    got = redis_alerts(settings)
    assert sorted(a["alert_id"] for a in got) == sorted(a.alert_id for a in want)
    assert sorted(a["alert_id"] for a in notification_alerts(settings)) == sorted(
        a["alert_id"] for a in got
    )
    assert not [i for i, n in Counter(a["alert_id"] for a in got).items() if n > 1]

    breaches = Counter(a["customer_id"] for a in got if a["sla_breach"])
    assert breaches == {"ignored": 1, "snoozed": 1}, "the acknowledged alert is not escalated"
    snoozed = [a for a in got if a["customer_id"] == "snoozed"]
    assert snoozed and min(a["event_time"] for a in snoozed) == "2025-03-01T00:00:00.000Z"

    audit = _audit_trails(settings)
    assert [(e["action"], e["actor"], e["alert_id"]) for e in audit["acked"]] == [
        ("acknowledge", "ops-anna", acked_amber.alert_id)
    ]
    assert [(e["action"], e["until"]) for e in audit["snoozed"]] == [
        ("snooze", "2025-03-01T00:00:00.000Z")
    ]

    # Redis is a view: after losing it, the rebuild brings back the audit trail too.
    redis.Redis.from_url(settings.redis_url).flushall()
    wait_until(lambda: asyncio.run(group_members(settings)) == 0, 30, "the group to empty")
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "redis", "rebuild"],
        env={**os.environ, **settings.env_vars},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "2 audit entries" in done.stdout
    assert _audit_trails(settings) == audit
    assert sorted(a["alert_id"] for a in redis_alerts(settings)) == sorted(
        a["alert_id"] for a in got
    )


def _audit_trails(settings: Settings) -> dict[str, list[dict[str, object]]]:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        layout = RedisLayout(settings.redis_prefix)
        return {
            c: [e for e in redis_history(client, layout, c) if e["kind"] == "feedback"]
            for c in ("acked", "snoozed", "ignored")
        }
    finally:
        client.close()
