"""The loop with people, in a real browser: Apache Kafka, redis-server, a worker, ``ews web`` and
headless Debian chromium driven by selenium.

Two customers each owe an instalment due 2025-01-10 and never pay; an event on 2025-02-09 puts
them at 30 days past due, so the hard floor raises amber (see tests/unit/test_feedback.py for the
same story offline). The amber SLA is 24 hours of event time here. A person acknowledges the
first customer's alert on its page in time; events on 2025-02-12 then move both customers past
the deadline: the second, unanswered, gets exactly one SLA-breach escalation, the first none.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from config.rules import DEFAULT_RULES
from config.settings import Settings
from sinks.redis import RedisLayout
from streams.health import stream_clock
from streams.localstack import ApacheKafka, RedisServer, free_port
from streams.replay import Recorded
from tests.support import (
    WorkerProcess,
    http_get,
    isolated_settings,
    notification_alerts,
    produce,
    wait_processed,
    wait_until,
)

pytestmark = pytest.mark.kafka

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ACKED, UNANSWERED = "c-acked", "c-unanswered"
PHASE_1 = datetime(2025, 2, 9, 6, 0, tzinfo=UTC)  # 30 days past due: amber by the floor
PHASE_3 = datetime(2025, 2, 12, 12, 0, tzinfo=UTC)  # past the 24 h amber SLA
ACTOR = "Dana from collections"


def require_browser() -> None:
    """Skip where chromium, its driver or selenium is missing; fail instead under
    ``EWS_REQUIRE_KAFKA=1`` (CI, whose Makefile installs them)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return
    reason = f"browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
    if os.environ.get("EWS_REQUIRE_KAFKA") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


# -- input ----------------------------------------------------------------------------------


def _ts(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def unpaid_instalment(settings: Settings, customer: str) -> Recorded:
    body = {
        "schema_version": 1,
        "event_id": f"rp-{customer}-1",
        "customer_id": customer,
        "loan_id": f"loan-{customer}",
        "ts": "2025-01-10T00:00:00Z",
        "type": "due",
        "instalment_no": 1,
        "due_date": date(2025, 1, 10).isoformat(),
        "amount_due": "500.00",
        "amount_paid": "0.00",
    }
    return Recorded(settings.topics.repayments, customer.encode(), orjson.dumps(body))


def card_spend(settings: Settings, customer: str, ts: datetime) -> Recorded:
    body = {
        "schema_version": 1,
        "event_id": f"tx-{customer}-{_ts(ts)}",
        "customer_id": customer,
        "account_id": f"acct-{customer}",
        "ts": _ts(ts),
        "amount": "20.00",
        "currency": "EUR",
        "direction": "debit",
        "channel": "card",
        "balance_after": "1500.00",
        "status": "posted",
    }
    return Recorded(settings.topics.transactions, customer.encode(), orjson.dumps(body))


# -- processes and the browser --------------------------------------------------------------


@pytest.fixture
def settings(kafka: ApacheKafka, redis_server: RedisServer, tmp_path: Path) -> Settings:
    rules = DEFAULT_RULES.read_text().replace("amber_hours = 48", "amber_hours = 24")
    assert "amber_hours = 24" in rules
    (tmp_path / "rules.toml").write_text(rules)
    return isolated_settings(
        kafka.bootstrap, redis_server.url, rules_file=str(tmp_path / "rules.toml")
    )


@pytest.fixture
def web_view(settings: Settings, artifacts: Path) -> Iterator[str]:
    """``ews web`` on a free port, stopped by its own pid; yields its base URL."""
    port = free_port()
    log = (artifacts / "web.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "web", "--port", str(port)],
        env={**os.environ, **settings.env_vars, "EWS_LOG_FORMAT": "json"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_get(base + "/")[0] == 200, 30, "ews web to answer")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def worker(settings: Settings, artifacts: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, artifacts / "worker.log").start()
    yield process
    process.stop()


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # never let selenium-manager download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1400")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def wait_for(driver: Any, css: str, timeout_s: float = 60) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    located = expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    return WebDriverWait(driver, timeout_s).until(located)


# -- the test -------------------------------------------------------------------------------


def test_a_person_acknowledges_in_the_browser_and_only_the_unanswered_alert_escalates(
    settings: Settings, worker: WorkerProcess, web_view: str, browser: Any, artifacts: Path
) -> None:
    """Feed updates live; an acknowledgement from the customer page stops that alert's SLA
    clock; the other customer's unanswered amber alert is escalated exactly once."""
    from selenium.webdriver.common.by import By

    browser.get(web_view + "/")
    browser.execute_script("window.notReloaded = true;")
    phase_1 = [unpaid_instalment(settings, c) for c in (ACKED, UNANSWERED)] + [
        card_spend(settings, c, PHASE_1) for c in (ACKED, UNANSWERED)
    ]
    produced = asyncio.run(produce(settings, phase_1))

    row = f"#feed li[data-level='amber'] a[href='/customers/{ACKED}']"
    wait_for(browser, row, timeout_s=90)
    wait_for(browser, f"#feed li[data-level='amber'] a[href='/customers/{UNANSWERED}']")
    assert browser.execute_script("return window.notReloaded === true;"), "the page reloaded"
    browser.save_screenshot(str(artifacts / "1-feed.png"))
    amber_filter = browser.find_element(
        By.CSS_SELECTOR, "input[name='level-filter'][value='amber']"
    )
    amber_filter.click()
    assert not browser.find_element(By.CSS_SELECTOR, row).is_displayed(), "level filter"
    amber_filter.click()
    assert browser.find_element(By.CSS_SELECTOR, row).is_displayed()

    # Feedback is stamped with the stream clock: wait until the heartbeat carries phase 1.
    wait_until(lambda: clock(settings) == PHASE_1, 30, "the stream clock to reach phase 1")

    def fresh_strip() -> bool:  # the strip refreshes itself over /events every few seconds
        text = browser.find_element(By.ID, "health").text
        return "Workers" in text and "Stale" not in text and "2025-02-09 06:00" in text

    wait_until(fresh_strip, 15, "the health strip to show the worker's heartbeat")
    browser.find_element(By.CSS_SELECTOR, row).click()
    wait_for(browser, "form#feedback")
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Customer {ACKED}"
    browser.find_element(By.ID, "actor").send_keys(ACTOR)
    browser.find_element(By.CSS_SELECTOR, "button[value^='acknowledge:']").click()
    flash = wait_for(browser, "p.flash")
    assert "Acknowledgement sent" in flash.text

    def audited() -> bool:
        browser.refresh()
        trail = browser.find_element(By.CSS_SELECTOR, "ol.audit").text
        return ACTOR in trail and "Acknowledge" in trail

    wait_until(audited, 60, "the acknowledgement in the audit trail (applied by the worker)")
    browser.save_screenshot(str(artifacts / "2-customer-acknowledged.png"))

    browser.get(web_view + "/")
    phase_3 = [card_spend(settings, c, PHASE_3) for c in (ACKED, UNANSWERED)]
    produced += asyncio.run(produce(settings, phase_3))
    wait_for(browser, f"#feed li[data-sla] a[href='/customers/{UNANSWERED}']", timeout_s=90)
    browser.save_screenshot(str(artifacts / "3-feed-sla-breach.png"))
    wait_processed(settings, produced + 1)  # the bank's events and the one acknowledgement

    ambers = {c: amber_alert(settings, c) for c in (ACKED, UNANSWERED)}
    on_topic = notification_alerts(settings)
    breaches = [a for a in on_topic if a.get("sla_breach")]
    assert [(a["customer_id"], a["escalates"]) for a in breaches] == [
        (UNANSWERED, ambers[UNANSWERED])
    ], breaches
    in_redis = redis_breaches(settings)
    assert in_redis == {ACKED: [], UNANSWERED: [ambers[UNANSWERED]]}


def clock(settings: Settings) -> datetime | None:
    async def read() -> datetime | None:
        client = redis.asyncio.Redis.from_url(settings.redis_url)
        try:
            return await stream_clock(client, RedisLayout(settings.redis_prefix))
        finally:
            await client.aclose()

    return asyncio.run(read())


def history(settings: Settings, customer: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        key = RedisLayout(settings.redis_prefix).history(customer)
        return [orjson.loads(item) for item in client.lrange(key, 0, -1)]  # type: ignore[union-attr]
    finally:
        client.close()


def amber_alert(settings: Settings, customer: str) -> str:
    """The customer's one amber alert that is not an escalation."""
    (raised,) = [
        e["alert_id"]
        for e in history(settings, customer)
        if e.get("level") == "amber" and e["kind"] != "feedback" and not e.get("sla_breach")
    ]
    return str(raised)


def redis_breaches(settings: Settings) -> dict[str, list[str]]:
    return {
        c: [e["escalates"] for e in history(settings, c) if e.get("sla_breach")]
        for c in (ACKED, UNANSWERED)
    }
