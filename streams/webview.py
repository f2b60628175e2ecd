"""``ews web``: the live web view for people, its own process (aiohttp), reading Redis only.

Why its own process and not pages on the workers' web servers: a crash or a load spike in the
UI never touches processing; N workers would otherwise serve N views; and it needs no partition
ownership, only Redis (to read) and the feedback topic (to write).

Pages (server-rendered, ``streams.webpages``), each with the health strip from the workers'
heartbeats (``streams.health``):

- ``GET /``: the newest alerts from the ``alerts`` stream, kept live by ``GET /events``
  (server-sent events: ``alert`` events carry a rendered row, read with XREAD BLOCK after the
  newest id the page showed; ``health`` events the strip, every few seconds), and the top of the
  watch-list.
- ``GET /watchlist``: the watch-list by score.
- ``GET /customers/{id}``: level, score, reasons, score and level history, the alerts with their
  trigger events, the audit trail of feedback, and forms that send each feedback action;
  404 for a customer Redis holds nothing for.
- ``POST /customers/{id}/feedback``: validates, produces one message to the feedback topic
  (``streams.feedback.send_feedback``, waiting for the broker's ack), then redirects back to the
  customer page with a notice (POST/redirect/GET). Feedback is stamped with the stream clock.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import redis.asyncio as aioredis
import structlog
from aiohttp import web
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from config.settings import Settings
from sinks.redis import RedisLayout
from streams import webpages
from streams.feedback import feedback_message, send_feedback
from streams.health import Health, feedback_time, read_snapshots, summarize
from streams.records import MAX_ID_LENGTH

log = structlog.get_logger(__name__)

STATIC = Path(__file__).parent / "webview_static"
FEED_ROWS = 50
WATCH_TOP = 20
WATCH_ALL = 200
BLOCK_MS = 2000
HEALTH_EVERY_S = 3.0
_STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")

Streams = list[tuple[str, list[tuple[str, dict[str, str]]]]]  # what XREAD answers

SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis", aioredis.Redis)
LAYOUT: web.AppKey[RedisLayout] = web.AppKey("layout", RedisLayout)


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[LAYOUT] = RedisLayout(settings.redis_prefix)
    app[REDIS] = aioredis.Redis.from_url(
        settings.redis_url,
        **settings.redis_client_options(),
        decode_responses=True,
        socket_timeout=BLOCK_MS / 1000 + 5,
        socket_connect_timeout=5,
    )
    app.on_cleanup.append(_close_redis)
    app.add_routes(
        [
            web.get("/", feed),
            web.get("/events", events),
            web.get("/watchlist", watchlist),
            web.get("/customers/{customer_id}", customer),
            web.post("/customers/{customer_id}/feedback", feedback),
            web.static("/static", STATIC),
        ]
    )
    app.middlewares.append(_errors)
    return app


def run_web(settings: Settings, host: str, port: int) -> None:
    print(f"web view: http://{host}:{port}/", flush=True)
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        print=None,
        access_log=None,  # a line per request, SSE reconnects included, would drown the rest
        shutdown_timeout=2.0,
    )


async def _close_redis(app: web.Application) -> None:
    await app[REDIS].aclose()


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Redis unreachable: a 503 page naming it (without its URL), not a traceback."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except (RedisError, OSError) as exc:
        log.warning("web_redis_error", error=str(exc)[:200], path=request.path)
        body = webpages.page(
            "Unavailable",
            "<h1>Redis does not answer</h1><p>Try again in a moment.</p>",
            summarize([]),
        )
        return _html(body, status=503)


# -- pages ----------------------------------------------------------------------------------


async def feed(request: web.Request) -> web.Response:
    client, layout = request.app[REDIS], request.app[LAYOUT]
    entries: list[tuple[str, dict[str, str]]] = await client.xrevrange(  # type: ignore[assignment]
        layout.alerts, count=FEED_ROWS
    )
    rows = [(sid, alert) for sid, fields in entries if (alert := _alert(fields)) is not None]
    watch = await _watch(client, layout, WATCH_TOP)
    last_id = entries[0][0] if entries else "0-0"
    return _html(webpages.feed_page(rows, watch, await _health(request), last_id))


async def watchlist(request: web.Request) -> web.Response:
    client, layout = request.app[REDIS], request.app[LAYOUT]
    watch = await _watch(client, layout, WATCH_ALL)
    return _html(webpages.watchlist_page(watch, await _health(request)))


async def customer(request: web.Request) -> web.Response:
    customer_id = request.match_info["customer_id"]
    view = await _customer_view(request, customer_id)
    if view is None:
        return _html(webpages.not_found_page(customer_id, await _health(request)), status=404)
    flash = webpages.DONE_MESSAGES.get(request.query.get("done", ""), "")
    return _html(webpages.customer_page(view, await _health(request), flash=flash))


async def feedback(request: web.Request) -> web.StreamResponse:
    """Validate the form, produce one feedback message, redirect back to the customer."""
    if not _same_origin(request):
        raise web.HTTPForbidden(text="cross-site form post refused")
    customer_id = request.match_info["customer_id"]
    view = await _customer_view(request, customer_id)
    if view is None:
        return _html(webpages.not_found_page(customer_id, await _health(request)), status=404)
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        message = build_feedback(view, fields, view.clock or datetime.now(UTC))
    except ValueError as exc:
        page = webpages.customer_page(view, await _health(request), error=str(exc))
        return _html(page, status=400)
    try:
        await send_feedback(request.app[SETTINGS], [message])
    except (KafkaError, OSError) as exc:  # the broker did not ack: nothing recorded, say so
        log.warning("web_feedback_not_sent", error=str(exc)[:200], customer_id=customer_id)
        error = "The feedback could not be sent to Kafka; nothing was recorded. Try again."
        return _html(webpages.customer_page(view, await _health(request), error=error), 503)
    log.info("web_feedback_sent", customer_id=customer_id, action=message["action"])
    location = f"{webpages.customer_href(customer_id)}?done={message['action']}"
    raise web.HTTPSeeOther(location)


def build_feedback(
    view: webpages.CustomerView, form: Mapping[str, str], ts: datetime
) -> dict[str, Any]:
    """The feedback message a submitted form asks for; ValueError with a readable message."""
    action, _, alert_id = form.get("action", "").partition(":")
    if action not in webpages.ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if action == "acknowledge":
        if alert_id not in {a.get("alert_id") for a in view.alerts}:
            raise ValueError("acknowledge names an alert this customer does not have")
    elif alert_id:
        raise ValueError(f"{action} applies to the customer, not to one alert")
    until_text = form.get("until", "").strip()
    until = parse_until(until_text) if action == "snooze" and until_text else None
    return feedback_message(
        view.customer_id,
        action,
        form.get("actor", "").strip(),
        ts,
        alert_id=alert_id or None,
        until=until,
        reason_code=(form.get("reason_code") or None) if action == "snooze" else None,
        note=form.get("note", "").strip() or None,
    )


def parse_until(text: str) -> datetime:
    """``YYYY-MM-DD`` (midnight UTC) or ``YYYY-MM-DDTHH:MM[:SS]`` (UTC) from the snooze form."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"until must be a date (YYYY-MM-DD), got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


# -- live updates ---------------------------------------------------------------------------


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``alert`` (a rendered feed row; ``id`` is its stream id, so a
    reconnecting browser resumes after it) and ``health`` (the strip). ``?alerts=0``: health
    only (pages other than the feed)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    want_alerts = request.query.get("alerts") != "0"
    try:
        async for chunk in _event_chunks(request, want_alerts):
            await response.write(chunk)
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the browser went away
    return response


async def _event_chunks(request: web.Request, want_alerts: bool) -> AsyncIterator[bytes]:
    client, layout = request.app[REDIS], request.app[LAYOUT]
    after = await _resume_from(request)
    next_health = 0.0
    while True:
        if time.monotonic() >= next_health:
            next_health = time.monotonic() + HEALTH_EVERY_S
            yield sse("health", webpages.health_strip(await _health(request)))
        if not want_alerts:
            await asyncio.sleep(HEALTH_EVERY_S)
            continue
        try:
            found: Streams = await client.xread(  # type: ignore[assignment]
                {layout.alerts: after}, count=100, block=BLOCK_MS
            )
        except (RedisError, OSError):
            await asyncio.sleep(1.0)
            continue
        for _, entries in found:
            for sid, fields in entries:
                after = sid
                alert = _alert(fields)
                if alert is not None:
                    yield sse("alert", webpages.alert_row(alert, sid), event_id=sid)


async def _resume_from(request: web.Request) -> str:
    """The stream id to read after: the browser's Last-Event-ID, the page's ``after``, else the
    newest entry now."""
    for candidate in (request.headers.get("Last-Event-ID", ""), request.query.get("after", "")):
        if _STREAM_ID.fullmatch(candidate):
            return candidate
    try:
        newest = await request.app[REDIS].xrevrange(request.app[LAYOUT].alerts, count=1)
    except (RedisError, OSError):
        return "$"
    return str(newest[0][0]) if newest else "0-0"


def sse(event: str, data: str, event_id: str = "") -> bytes:
    """One server-sent event; ``data`` may span lines."""
    lines = [f"event: {event}"]
    if event_id:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode()


# -- reading Redis --------------------------------------------------------------------------


async def _health(request: web.Request) -> Health:
    try:
        return summarize(await read_snapshots(request.app[REDIS], request.app[LAYOUT]))
    except (RedisError, OSError):
        return summarize([])


async def _watch(
    client: aioredis.Redis, layout: RedisLayout, count: int
) -> list[webpages.WatchEntry]:
    members: list[tuple[str, float]] = await client.zrevrange(  # type: ignore[assignment]
        layout.watchlist, 0, count - 1, withscores=True
    )
    async with client.pipeline(transaction=False) as pipe:
        for member, _ in members:
            pipe.hget(layout.customer(member), "level")
        levels = await pipe.execute()
    return [
        webpages.WatchEntry(str(member), float(score), str(level or "?"))
        for (member, score), level in zip(members, levels, strict=True)
    ]


async def _customer_view(request: web.Request, customer_id: str) -> webpages.CustomerView | None:
    """The customer as Redis holds it; None for an invalid id or one Redis knows nothing of."""
    if not valid_customer_id(customer_id):
        return None
    client, layout = request.app[REDIS], request.app[LAYOUT]
    async with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(layout.customer(customer_id))
        pipe.lrange(layout.history(customer_id), 0, -1)
        pipe.zrevrank(layout.watchlist, customer_id)
        fields, raw_history, rank = await pipe.execute()
    if not fields and not raw_history:
        return None
    alerts, notes = webpages.split_history(_decoded(raw_history))
    clock = await feedback_time(client, layout)
    return webpages.CustomerView(customer_id, fields, alerts, notes, rank, clock)


def valid_customer_id(customer_id: str) -> bool:
    """As the input decoder accepts them: 1..128 printable characters."""
    return 0 < len(customer_id) <= MAX_ID_LENGTH and customer_id.isprintable()


def _decoded(items: list[str]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        try:
            value = orjson.loads(item)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def _alert(fields: Mapping[str, str]) -> dict[str, Any] | None:
    try:
        value = orjson.loads(fields.get("alert", ""))
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _same_origin(request: web.Request) -> bool:
    """A form post from a page of this server (browsers send Origin on POST); a post with no
    Origin (a script, curl) is let through."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.host


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )
