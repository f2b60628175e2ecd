"""HTML of the web view (``streams.webview``): pure functions from data read in Redis to text.

Everything that comes from events or Redis goes through :func:`esc` (``html.escape`` with
quotes), and customer ids in links through :func:`customer_href` (percent-quoted), so a
``<script>`` in a customer id, a reason or a note is shown as text, never run. No external
assets: one stylesheet and one small script under ``/static/``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson

from streams.applier import SWEEP_TOPIC
from streams.health import Health

LEVELS = ("watch", "amber", "red")
ALERT_KINDS = frozenset({"raised", "escalated", "downgraded", "resolved"})
ACTIONS = ("acknowledge", "snooze", "unsnooze", "false_positive", "confirmed_risk", "resolve")
ACTION_LABELS = {
    "acknowledge": "Acknowledge",
    "snooze": "Snooze",
    "unsnooze": "Unsnooze",
    "false_positive": "Mark false positive",
    "confirmed_risk": "Confirm risk",
    "resolve": "Resolve",
}
ANSWERED_AS = {
    "acknowledge": "Acknowledged",
    "snooze": "Snoozed",
    "unsnooze": "Unsnoozed",
    "false_positive": "Marked false positive",
    "confirmed_risk": "Confirmed as risk",
    "resolve": "Resolved",
}
DONE_MESSAGES = {
    "acknowledge": "Acknowledgement sent.",
    "snooze": "Snooze sent.",
    "unsnooze": "Unsnooze sent.",
    "false_positive": "False positive sent.",
    "confirmed_risk": "Confirmed risk sent.",
    "resolve": "Resolution sent.",
}


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def customer_href(customer_id: str) -> str:
    return "/customers/" + quote(customer_id, safe="")


# -- data read from Redis -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchEntry:
    customer_id: str
    score: float
    level: str


@dataclass(frozen=True, slots=True)
class CustomerView:
    """One customer as Redis holds it: the hash, and the history split into alerts and feedback
    (both newest first)."""

    customer_id: str
    fields: Mapping[str, str]
    alerts: Sequence[Mapping[str, Any]]
    feedback: Sequence[Mapping[str, Any]]
    rank: int | None = None  # 0-based place on the watch-list
    clock: datetime | None = None  # when feedback given now happens (streams.health.feedback_time)

    def reasons(self) -> list[Mapping[str, Any]]:
        return [r for r in _json_list(self.fields.get("reasons")) if isinstance(r, Mapping)]

    def answered(self) -> dict[str, Mapping[str, Any]]:
        """alert_id -> the newest feedback entry naming it."""
        out: dict[str, Mapping[str, Any]] = {}
        for entry in self.feedback:
            alert_id = entry.get("alert_id")
            if isinstance(alert_id, str) and alert_id not in out:
                out[alert_id] = entry
        return out

    def reason_codes(self) -> list[str]:
        codes = [r.get("code") for r in self.reasons()]
        for alert in self.alerts:
            codes += [r.get("code") for r in _reasons_of(alert)]
        return sorted({c for c in codes if isinstance(c, str) and c})


def split_history(entries: Iterable[Mapping[str, Any]]) -> tuple[list[Any], list[Any]]:
    """(alerts, feedback entries) of a decoded history list, order kept; others dropped."""
    alerts, feedback = [], []
    for entry in entries:
        kind = entry.get("kind")
        if kind == "feedback":
            feedback.append(entry)
        elif kind in ALERT_KINDS:
            alerts.append(entry)
    return alerts, feedback


def _json_list(text: str | None) -> list[Any]:
    try:
        value = orjson.loads(text or "[]")
    except orjson.JSONDecodeError:
        return []
    return value if isinstance(value, list) else []


# -- the frame every page shares ------------------------------------------------------------


def page(title: str, body: str, health: Health, *, flash: str = "", error: str = "") -> str:
    notices = ""
    if flash:
        notices += f'<p class="flash" role="status">{esc(flash)}</p>'
    if error:
        notices += f'<p class="error" role="alert">{esc(error)}</p>'
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · credit early warning</title>"
        '<link rel="stylesheet" href="/static/webview.css"></head><body>'
        '<header><nav aria-label="Main"><a href="/">Live alerts</a> '
        '<a href="/watchlist">Watch-list</a></nav>'
        f'<section id="health" aria-label="System health">{health_strip(health)}</section>'
        f"</header><main>{notices}{body}</main>"
        '<script src="/static/webview.js" defer></script></body></html>\n'
    )


def health_strip(health: Health, now: datetime | None = None) -> str:
    """Figures of the live workers' heartbeats; marked stale when no worker beats."""
    if health.stale:
        return (
            '<p class="health stale"><strong>Stale:</strong> no worker heartbeat in Redis '
            "(no worker running, or Redis unreachable).</p>"
        )
    labels = f"{health.labels_learned:,} learned"
    if health.human_labels is not None:
        labels += f" ({health.human_labels:,} from people)"
    labels += f", {health.labels_matured:,} matured"
    items = [
        ("Workers", f"{health.workers}"),
        ("Events/s", f"{health.events_per_s:,.0f}"),
        ("Lag", f"{health.lag:,}"),
        ("Dead letters", f"{health.dead_letters:,}"),
        ("Alerts", f"{health.alerts:,}"),
        ("Model", ", ".join(health.model_versions)),
        ("Labels", labels),
        ("Event time", _when(health.event_time)),
    ]
    inner = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    return f'<dl class="health">{inner}</dl>'


# -- alerts ---------------------------------------------------------------------------------


def alert_row(alert: Mapping[str, Any], stream_id: str = "") -> str:
    """One ``<li>`` of the live feed (also sent as is over ``/events``)."""
    level = str(alert.get("level", ""))
    customer_id = str(alert.get("customer_id", ""))
    breach = _sla_badge(alert)
    reasons = "; ".join(_reason_text(r) for r in _reasons_of(alert))
    return (
        f'<li class="alert alert-{_level_class(level)}" data-level="{esc(level)}"'
        f' data-id="{esc(stream_id)}"{" data-sla" if breach else ""}>'
        f'<time datetime="{esc(alert.get("event_time"))}">{esc(_short(alert.get("event_time")))}'
        f"</time> {_level_badge(level)} {esc(alert.get('kind'))}{breach} "
        f'<a href="{esc(customer_href(customer_id))}">{esc(customer_id)}</a> '
        f"score {_score(alert.get('score'))} (from {esc(alert.get('previous_level'))})"
        f'<span class="reasons">{esc(reasons)}</span></li>'
    )


def feed_page(
    rows: Sequence[tuple[str, Mapping[str, Any]]],
    watch: Sequence[WatchEntry],
    health: Health,
    last_id: str = "0-0",
) -> str:
    """``/``: the newest alerts (rows are ``(stream id, alert)``, newest first), a level
    filter, and the top of the watch-list. ``last_id``, the newest stream entry when the page
    was read (``0-0``: none), is where the page's live updates start, so none falls between."""
    filters = "".join(
        f'<label><input type="checkbox" name="level-filter" value="{lv}" checked> {lv}</label> '
        for lv in LEVELS
    )
    items = "".join(alert_row(alert, sid) for sid, alert in rows)
    empty = "" if rows else '<li class="empty">No alerts yet.</li>'
    body = (
        "<h1>Live alerts</h1>"
        f'<fieldset class="filter"><legend>Show levels</legend>{filters}'
        '<label><input type="checkbox" name="level-filter" value="none" checked> none</label>'
        "</fieldset>"
        f'<ol id="feed" class="feed" aria-live="polite" aria-relevant="additions"'
        f' data-last-id="{esc(last_id)}">{empty}{items}</ol>'
        '<section aria-labelledby="watch-h"><h2 id="watch-h">Top of the watch-list</h2>'
        f'{watch_table(watch)}<p><a href="/watchlist">Whole watch-list</a></p></section>'
    )
    return page("Live alerts", body, health)


def watch_table(watch: Sequence[WatchEntry]) -> str:
    if not watch:
        return "<p>Nobody is on the watch-list.</p>"
    rows = "".join(
        f'<tr><td>{i}</td><td><a href="{esc(customer_href(w.customer_id))}">'
        f"{esc(w.customer_id)}</a></td><td>{_level_badge(w.level)}</td>"
        f"<td>{_score(w.score)}</td></tr>"
        for i, w in enumerate(watch, start=1)
    )
    return (
        '<table class="watch"><thead><tr><th scope="col">#</th><th scope="col">Customer</th>'
        f'<th scope="col">Level</th><th scope="col">Score</th></tr></thead><tbody>{rows}</tbody>'
        "</table>"
    )


def watchlist_page(watch: Sequence[WatchEntry], health: Health) -> str:
    body = f"<h1>Watch-list</h1><p>Customers above none, riskiest first.</p>{watch_table(watch)}"
    return page("Watch-list", body, health)


# -- one customer ---------------------------------------------------------------------------


def customer_page(view: CustomerView, health: Health, *, flash: str = "", error: str = "") -> str:
    body = (
        f"<h1>Customer {esc(view.customer_id)}</h1>"
        f"{_now_section(view)}{_history_section(view)}{_feedback_form(view)}"
        f"{_alerts_section(view)}{_audit_section(view)}"
    )
    return page(f"Customer {view.customer_id}", body, health, flash=flash, error=error)


def not_found_page(customer_id: str, health: Health) -> str:
    body = (
        "<h1>Unknown customer</h1>"
        f"<p>Redis holds nothing for customer <code>{esc(customer_id)}</code>: never alerted, "
        'expired, or mistyped. <a href="/watchlist">Back to the watch-list</a>.</p>'
    )
    return page("Unknown customer", body, health)


def _now_section(view: CustomerView) -> str:
    f = view.fields
    rank = "not listed" if view.rank is None else f"#{view.rank + 1}"
    facts = [
        ("Level", _level_badge(f.get("level", "none"))),
        ("Score", _score(f.get("score"))),
        ("Watch-list", esc(rank)),
        ("Updated (event time)", esc(_short(f.get("updated_at")))),
        ("Model / rules", f"{esc(f.get('model_version'))} / {esc(f.get('rules_version'))}"),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    reasons = "".join(f"<li>{esc(_reason_text(r))}</li>" for r in view.reasons())
    why = f'<h3>Why</h3><ul class="reasons">{reasons}</ul>' if reasons else ""
    return (
        '<section aria-labelledby="now-h"><h2 id="now-h">Now</h2>'
        f'<dl class="facts">{dl}</dl>{why}</section>'
    )


def _history_section(view: CustomerView) -> str:
    points = [
        (str(a.get("event_time", "")), _float(a.get("score")), str(a.get("level", "")))
        for a in reversed(view.alerts)
    ]
    if not points:
        return ""
    steps = " → ".join(f"{esc(level)} ({score:.2f})" for _, score, level in points)
    return (
        '<section aria-labelledby="hist-h"><h2 id="hist-h">Score and level history</h2>'
        f"{sparkline([s for _, s, _ in points])}<p>{steps}</p></section>"
    )


def sparkline(scores: Sequence[float], width: int = 240, height: int = 40, pad: int = 4) -> str:
    """A small inline SVG of scores in [0, 1], oldest left, the latest as a dot."""
    if not scores:
        return ""
    step = (width - 2 * pad) / max(1, len(scores) - 1)
    points = [
        (pad + i * step, pad + (1 - min(1.0, max(0.0, s))) * (height - 2 * pad))
        for i, s in enumerate(scores)
    ]
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    last_x, last_y = points[-1]
    label = f"score over {len(scores)} alerts, last {scores[-1]:.2f}"
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' role="img" aria-label="{esc(label)}"><polyline fill="none" stroke="currentColor"'
        f' stroke-width="2" points="{coords}"/>'
        f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="3" fill="currentColor"/></svg>'
    )


def _feedback_form(view: CustomerView) -> str:
    default_until = ""
    if view.clock is not None:
        default_until = (view.clock + timedelta(days=7)).date().isoformat()
    codes = "".join(f'<option value="{esc(c)}">{esc(c)}</option>' for c in view.reason_codes())
    buttons = "".join(
        f'<button type="submit" name="action" value="{a}">{ACTION_LABELS[a]}</button> '
        for a in ("unsnooze", "false_positive", "confirmed_risk", "resolve")
    )
    return (
        '<section aria-labelledby="act-h"><h2 id="act-h">Act</h2>'
        f'<form id="feedback" method="post" action="{esc(customer_href(view.customer_id))}'
        '/feedback">'
        '<p><label for="actor">Your name (required)</label> '
        '<input id="actor" name="actor" required maxlength="128" autocomplete="name"></p>'
        '<p><label for="note">Note</label> <input id="note" name="note" maxlength="500"></p>'
        "<fieldset><legend>Snooze</legend>"
        '<label for="until">Until (UTC date)</label> '
        f'<input type="date" id="until" name="until" value="{esc(default_until)}"> '
        '<label for="reason_code">Only alerts led by</label> <select id="reason_code"'
        f' name="reason_code"><option value="">any reason</option>{codes}</select> '
        '<button type="submit" name="action" value="snooze">Snooze</button></fieldset>'
        f'<p class="actions">{buttons}</p></form>'
        "<p>Acknowledge single alerts in the table below.</p></section>"
    )


def _alerts_section(view: CustomerView) -> str:
    if not view.alerts:
        return ""
    answered = view.answered()
    rows = "".join(_alert_tr(alert, answered) for alert in view.alerts)
    return (
        '<section aria-labelledby="alerts-h"><h2 id="alerts-h">Alerts and their trigger events'
        '</h2><table class="alerts"><thead><tr><th scope="col">Event time</th>'
        '<th scope="col">Alert</th><th scope="col">Score</th><th scope="col">Reasons</th>'
        '<th scope="col">Trigger event</th><th scope="col">Answer</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></section>"
    )


def _alert_tr(alert: Mapping[str, Any], answered: Mapping[str, Mapping[str, Any]]) -> str:
    alert_id = str(alert.get("alert_id", ""))
    trigger = alert.get("trigger") if isinstance(alert.get("trigger"), Mapping) else {}
    assert isinstance(trigger, Mapping)
    reasons = "".join(
        f"<li>{esc(_reason_text(r))}</li>"
        for r in alert.get("reasons", [])
        if isinstance(r, Mapping)
    )
    answer = answered.get(alert_id)
    if answer is not None:
        done = ANSWERED_AS.get(str(answer.get("action")), str(answer.get("action")))
        cell = f"{esc(done)} by {esc(answer.get('actor'))}"
    else:
        cell = (
            f'<button type="submit" form="feedback" name="action" value="acknowledge:'
            f'{esc(alert_id)}" aria-label="Acknowledge alert {esc(alert_id[:8])}">'
            "Acknowledge</button>"
        )
    return (
        f'<tr data-alert-id="{esc(alert_id)}"><td>{esc(_short(alert.get("event_time")))}</td>'
        f"<td>{_level_badge(str(alert.get('level', '')))} {esc(alert.get('kind'))}"
        f" (from {esc(alert.get('previous_level'))}){_sla_badge(alert)}"
        f'<br><code title="alert id">{esc(alert_id[:12])}</code></td>'
        f"<td>{_score(alert.get('score'))}</td><td><ul>{reasons}</ul></td>"
        f"<td>{_trigger(trigger)}</td><td>{cell}</td></tr>"
    )


def _trigger(trigger: Mapping[str, Any]) -> str:
    """The event that raised an alert, or the daily sweep that did."""
    partition = esc(trigger.get("partition"))
    if trigger.get("topic") == SWEEP_TOPIC:
        return f"event-time sweep at midnight<br><small>partition {partition}</small>"
    return (
        f"{esc(trigger.get('event_id'))}<br><small>{esc(trigger.get('topic'))} "
        f"partition {partition}, offset {esc(trigger.get('offset'))}</small>"
    )


def _audit_section(view: CustomerView) -> str:
    if not view.feedback:
        items = "<li>No feedback yet.</li>"
    else:
        items = "".join(_audit_item(entry) for entry in view.feedback)
    return (
        '<section aria-labelledby="audit-h"><h2 id="audit-h">Audit trail</h2>'
        f'<ol class="audit">{items}</ol></section>'
    )


def _audit_item(entry: Mapping[str, Any]) -> str:
    parts = [
        f'<time datetime="{esc(entry.get("ts"))}">{esc(_short(entry.get("ts")))}</time>',
        f"<strong>{esc(entry.get('actor'))}</strong>",
        esc(ANSWERED_AS.get(str(entry.get("action")), entry.get("action"))),
    ]
    if entry.get("alert_id"):
        parts.append(f"alert <code>{esc(str(entry['alert_id'])[:12])}</code>")
    else:
        parts.append("(customer-wide)")
    if entry.get("until"):
        parts.append(f"until {esc(_short(entry['until']))}")
    if entry.get("reason_code"):
        parts.append(f"for {esc(entry['reason_code'])}")
    if entry.get("note"):
        parts.append(f"— “{esc(entry['note'])}”")
    return f"<li>{' '.join(parts)}</li>"


# -- small pieces ---------------------------------------------------------------------------


def _level_class(level: str) -> str:
    return level if level in {"none", *LEVELS} else "unknown"


def _level_badge(level: str) -> str:
    return f'<span class="level level-{_level_class(level)}">{esc(level.upper())}</span>'


def _sla_badge(alert: Mapping[str, Any]) -> str:
    if alert.get("sla_breach") is not True:
        return ""
    original = str(alert.get("escalates") or "")
    return (
        f' <strong class="sla" title="escalates {esc(original)}">SLA breach</strong>'
        f" <small>(unanswered: escalates {esc(original[:12])})</small>"
    )


def _reasons_of(alert: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    reasons = alert.get("reasons")
    return [r for r in reasons if isinstance(r, Mapping)] if isinstance(reasons, list) else []


def _reason_text(reason: Mapping[str, Any]) -> str:
    return str(reason.get("text") or reason.get("code") or "")


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _score(value: object) -> str:
    return f"{_float(value):.2f}"


def _short(value: object) -> str:
    """An RFC 3339 time as ``YYYY-MM-DD HH:MM UTC``; other text as is."""
    text = "" if value is None else str(value)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text
    return _when(when)


def _when(when: datetime | None) -> str:
    return "-" if when is None else when.strftime("%Y-%m-%d %H:%M UTC")
