"""Render an offline evaluation report (``report.json``) as one self-contained HTML page.

:func:`render_html` returns a page with no JavaScript and no external files: a header, a table
of figures with one column per variant, and four inline SVG charts (ROC, calibration, lead-time
histogram, alerts per month). Every string taken from the report is escaped with
:func:`html.escape`; a figure that is ``None``, missing or not a finite number shows as "n/a".

The report it receives::

    {
      "input": {"path": str, "events": int, "dead_letters": int, "customers": int,
                "first_day": "YYYY-MM-DD", "last_day": "YYYY-MM-DD", "months": float},
      "variants": [Figures, ...],  # the first is the champion; a second, if any, the challenger
    }

    Figures = {
      "name": str, "rules_version": str, "model_version": str,
      "score": {"n": int, "positives": int,
                "roc_auc": float | None, "pr_auc": float | None,
                "brier": float | None, "ece": float | None,
                "roc_curve": [[fpr, tpr], ...],
                "calibration": [{"low", "high", "mean_predicted", "observed", "count"}, ...]},
      "customer_score": {...as "score"...},  # per customer at evaluate_at; n 0 without one
      "labels_learned": int, "alerts": int,
      "levels": {"watch" | "amber" | "red" | "amber_or_red":
                 {"alerts": int, "customers": int,
                  "precision": float | None, "recall": float | None}},
      "lead_time": streams.report_metrics.lead_time_summary(...),
      "burden": {"warnings": int, "notifications": int, "alerts_per_1000_per_month": float,
                 "healthy_alerts_per_1000_per_month": float,
                 "by_month": [{"month": "YYYY-MM", "watch": int, "amber": int, "red": int}, ...]},
    }

Precision, recall and lead-time shares are fractions in ``[0, 1]``; the page shows them as
percentages. "Healthy" customers are those who did not go bad.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["render_html"]

NA = "n/a"
LEVELS = ("watch", "amber", "red", "amber_or_red")
LEVEL_NAMES = {"watch": "Watch", "amber": "Amber", "red": "Red", "amber_or_red": "Amber or red"}
STACKED = ("watch", "amber", "red")


def render_html(report: Mapping[str, Any]) -> str:
    """The whole page for ``report`` (shape in the module docstring); never raises on gaps."""
    variants = [v for v in _list(report.get("variants")) if isinstance(v, Mapping)] or [{}]
    path = _text(_get(report, "input", "path"))
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Early-warning evaluation: {path}</title>",
            f"<style>{CSS}</style>",
            "</head>",
            "<body>",
            "<main>",
            _header(report, variants),
            _figures_table(variants),
            '<section class="charts" aria-labelledby="charts-heading">',
            '<h2 id="charts-heading">Charts</h2>',
            _roc_chart(variants),
            _calibration_chart(variants),
            _lead_time_chart(variants[0]),
            _burden_chart(variants[0]),
            "</section>",
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )


# --- reading the report defensively and formatting values --------------------------------


def _get(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]...``, or ``None`` as soon as a step is missing or not a mapping."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fixed(value: Any, digits: int = 3) -> str:
    x = _number(value)
    return NA if x is None else f"{x:,.{digits}f}"


def _percent(value: Any) -> str:
    x = _number(value)
    return NA if x is None else f"{x * 100:.1f}%"


def _count(value: Any) -> str:
    x = _number(value)
    if x is None:
        return NA
    return f"{int(x):,}" if x == int(x) else f"{x:,.1f}"


def _text(value: Any) -> str:
    return NA if value is None else html.escape(str(value))


def _role(index: int) -> str:
    return ("Champion", "Challenger")[index] if index < 2 else f"Variant {index + 1}"


def _label(variant: Mapping[str, Any], index: int, limit: int = 40) -> str:
    """``Role: name``, shortened for chart legends, escaped."""
    name = variant.get("name")
    role = _role(index)
    raw = role if name is None or str(name).lower() == role.lower() else f"{role}: {name}"
    return html.escape(raw if len(raw) <= limit else raw[: limit - 1] + "\u2026")


# --- header and figures table -------------------------------------------------------------


def _header(report: Mapping[str, Any], variants: list[Mapping[str, Any]]) -> str:
    def get(key: str) -> Any:
        return _get(report, "input", key)

    facts = [
        ("Events", _count(get("events"))),
        ("Dead letters", _count(get("dead_letters"))),
        ("Customers", _count(get("customers"))),
        ("Period", f"{_text(get('first_day'))} to {_text(get('last_day'))}"),
        ("Months", _fixed(get("months"), 1)),
    ]
    versions = [
        f"<li><strong>{_label(v, i, limit=200)}</strong>: rules "
        f"<code>{_text(v.get('rules_version'))}</code>, model "
        f"<code>{_text(v.get('model_version'))}</code></li>"
        for i, v in enumerate(variants)
    ]
    return "\n".join(
        [
            "<header>",
            "<h1>Credit early-warning evaluation</h1>",
            f'<p class="input">Input: <code>{_text(get("path"))}</code></p>',
            '<dl class="facts">',
            *(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in facts),
            "</dl>",
            '<ul class="versions">',
            *versions,
            "</ul>",
            "</header>",
        ]
    )


Row = tuple[str, Callable[[Mapping[str, Any]], str]]


def _score_rows(part: str = "score") -> list[Row]:
    def score(key: str, fmt: Callable[[Any], str]) -> Callable[[Mapping[str, Any]], str]:
        return lambda f: fmt(_get(f, part, key))

    return [
        ("ROC AUC", score("roc_auc", _fixed)),
        ("PR AUC (average precision)", score("pr_auc", _fixed)),
        ("Brier score", score("brier", _fixed)),
        ("Expected calibration error", score("ece", _fixed)),
        (
            "n / positives",
            lambda f: f"{score('n', _count)(f)} / {score('positives', _count)(f)}",
        ),
    ]


def _level_rows(level: str) -> list[Row]:
    def cell(key: str, fmt: Callable[[Any], str]) -> Callable[[Mapping[str, Any]], str]:
        return lambda f: fmt(_get(f, "levels", level, key))

    return [
        ("Alerts", cell("alerts", _count)),
        ("Customers alerted", cell("customers", _count)),
        ("Precision", cell("precision", _percent)),
        ("Recall", cell("recall", _percent)),
    ]


def _lead_rows() -> list[Row]:
    def lead(key: str, fmt: Callable[[Any], str]) -> Callable[[Mapping[str, Any]], str]:
        return lambda f: fmt(_get(f, "lead_time", key))

    def warned(f: Mapping[str, Any]) -> str:
        return f"{lead('warned', _count)(f)} of {lead('bad_customers', _count)(f)}"

    return [
        ("Bad customers warned beforehand", warned),
        ("Median days from first warning to bad", lead("median_days", lambda x: _fixed(x, 1))),
        *((f"Warned \u2265 {d} days ahead", lead(f"share_{d}", _percent)) for d in (30, 60, 90)),
    ]


def _burden_rows() -> list[Row]:
    def burden(key: str) -> Callable[[Mapping[str, Any]], str]:
        return lambda f: _fixed(_get(f, "burden", key), 1)

    return [
        ("Alerts per 1,000 customers per month", burden("alerts_per_1000_per_month")),
        (
            "Alerts per 1,000 healthy customers per month",
            burden("healthy_alerts_per_1000_per_month"),
        ),
    ]


def _figures_table(variants: list[Mapping[str, Any]]) -> str:
    groups: list[tuple[str, list[Row]]] = [("Score on matured labels", _score_rows())]
    if any(_number(_get(v, "customer_score", "n")) for v in variants):
        groups.append(("Customer score just before evaluation", _score_rows("customer_score")))
    groups += [
        *((f"Level: {LEVEL_NAMES[lv]}", _level_rows(lv)) for lv in LEVELS),
        ("Lead time (bad customers)", _lead_rows()),
        ("Alert burden", _burden_rows()),
    ]
    heads = "".join(
        f'<th scope="col">{_role(i)}<span class="name">{_text(v.get("name"))}</span></th>'
        for i, v in enumerate(variants)
    )
    lines = [
        '<section aria-labelledby="figures-heading">',
        '<h2 id="figures-heading">Figures</h2>',
        "<table>",
        "<caption>Figures per variant. Precision, recall and shares are percentages; "
        "n/a means the figure could not be computed.</caption>",
        f'<thead><tr><th scope="col">Figure</th>{heads}</tr></thead>',
    ]
    for title, rows in groups:
        lines.append("<tbody>")
        span = len(variants) + 1
        lines.append(f'<tr class="group"><th scope="rowgroup" colspan="{span}">{title}</th></tr>')
        for label, cell in rows:
            cells = "".join(f"<td>{cell(v)}</td>" for v in variants)
            lines.append(f'<tr><th scope="row">{label}</th>{cells}</tr>')
        lines.append("</tbody>")
    lines += ["</table>", "</section>"]
    return "\n".join(lines)


# --- SVG building blocks ------------------------------------------------------------------

LEFT, RIGHT, BOTTOM = 60, 16, 56
PLOT_WIDTH, PLOT_HEIGHT = 404, 236
WIDTH = LEFT + PLOT_WIDTH + RIGHT
CHAR_WIDTH = 7.5  # a generous average glyph width at the 12px chart font, for layout
LEGEND_ROW = 18


@dataclass(frozen=True)
class _Frame:
    """A chart canvas: the legend above, then the plot area; ``x``/``y`` map ``[0, 1]`` into it."""

    top: int = 24

    @property
    def height(self) -> int:
        return self.top + PLOT_HEIGHT + BOTTOM

    def x(self, u: float) -> float:
        return LEFT + u * PLOT_WIDTH

    def y(self, v: float) -> float:
        return self.top + (1.0 - v) * PLOT_HEIGHT


@dataclass(frozen=True)
class _Style:
    colour: str
    dash: str
    marker: str


# Okabe-Ito colours (colour-blind safe); dash and marker shape tell variants apart without colour.
VARIANT_STYLES = (
    _Style("#0072B2", "", "circle"),
    _Style("#D55E00", "7 4", "square"),
    _Style("#009E73", "2 3", "diamond"),
)
LEVEL_FILLS = {"watch": "#56B4E9", "amber": "url(#hatch-amber)", "red": "url(#hatch-red)"}
PATTERNS = (
    '<defs><pattern id="hatch-amber" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#E69F00"/>'
    '<line x1="0" y1="0" x2="0" y2="6" stroke="#000" stroke-opacity="0.45" stroke-width="2"/>'
    "</pattern>"
    '<pattern id="hatch-red" width="6" height="6" patternUnits="userSpaceOnUse">'
    '<rect width="6" height="6" fill="#B2361A"/>'
    '<path d="M0 0L6 6M6 0L0 6" stroke="#fff" stroke-opacity="0.6" stroke-width="1.2"/>'
    "</pattern></defs>"
)
REFERENCE = 'stroke="#777" stroke-width="1.5" stroke-dasharray="1 3"'
UNIT_TICKS = [(i / 5, f"{i / 5:.1f}") for i in range(6)]

SVG_FONT = "system-ui, Helvetica, Arial, sans-serif"  # attributes, so a copied chart keeps it

Swatch = Callable[[float, float], str]


def _f(v: float) -> str:
    return f"{v:.1f}"


def _svg(frame: _Frame, ident: str, title: str, desc: str, body: list[str]) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {frame.height}" '
            f'width="{WIDTH}" height="{frame.height}" role="img" '
            f'font-family="{SVG_FONT}" font-size="12" fill="#1a1a1a" '
            f'aria-labelledby="{ident}-title {ident}-desc">',
            f'<title id="{ident}-title">{title}</title>',
            f'<desc id="{ident}-desc">{desc}</desc>',
            *body,
            "</svg>",
        ]
    )


def _figure(svg: str, caption: str) -> str:
    return f"<figure>\n{svg}\n<figcaption>{caption}</figcaption>\n</figure>"


def _na_figure(caption: str, reason: str) -> str:
    return _figure(f'<p class="na">{NA}: {reason}</p>', caption)


def _axes(
    frame: _Frame,
    x_ticks: Sequence[tuple[float, str]],
    y_ticks: Sequence[tuple[float, str]],
    x_label: str,
    y_label: str,
) -> list[str]:
    """Grid lines, tick labels and axis titles; tick positions are in ``[0, 1]``."""
    bottom, right = frame.y(0), frame.x(1)
    out = ['<g class="grid" stroke="#ddd" stroke-width="1">']
    out += [
        f'<line x1="{_f(frame.x(u))}" y1="{frame.top}" x2="{_f(frame.x(u))}" y2="{_f(bottom)}"/>'
        for u, _ in x_ticks
    ]
    out += [
        f'<line x1="{LEFT}" y1="{_f(frame.y(v))}" x2="{_f(right)}" y2="{_f(frame.y(v))}"/>'
        for v, _ in y_ticks
    ]
    out.append("</g>")
    out.append(
        f'<rect x="{LEFT}" y="{frame.top}" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" '
        'fill="none" stroke="#555"/>'
    )
    out += [
        f'<text x="{_f(frame.x(u))}" y="{_f(bottom + 16)}" text-anchor="middle">{label}</text>'
        for u, label in x_ticks
    ]
    out += [
        f'<text x="{LEFT - 6}" y="{_f(frame.y(v) + 4)}" text-anchor="end">{label}</text>'
        for v, label in y_ticks
    ]
    mid_y = _f(frame.top + PLOT_HEIGHT / 2)
    out.append(
        f'<text x="{_f(frame.x(0.5))}" y="{frame.height - 10}" text-anchor="middle" '
        f'font-size="13">{x_label}</text>'
    )
    out.append(
        f'<text x="14" y="{mid_y}" text-anchor="middle" font-size="13" '
        f'transform="rotate(-90 14 {mid_y})">{y_label}</text>'
    )
    return out


def _legend(items: Sequence[tuple[Swatch, str]]) -> tuple[list[str], _Frame]:
    """Swatch-and-label pairs in rows above the plot (labels already escaped), and the frame
    whose plot area starts below them."""
    out = ['<g class="legend">']
    x, y = float(LEFT), 16.0
    for swatch, label in items:
        width = 28 + CHAR_WIDTH * len(html.unescape(label))
        if x > LEFT and x + width > WIDTH - RIGHT:
            x, y = float(LEFT), y + LEGEND_ROW
        out.append(swatch(x, y))
        out.append(f'<text x="{_f(x + 28)}" y="{_f(y + 4)}">{label}</text>')
        x += width + 14
    out.append("</g>")
    return out, _Frame(top=int(y) + LEGEND_ROW)


def _marker(style: _Style, x: float, y: float) -> str:
    if style.marker == "square":
        corner = f'x="{_f(x - 3.5)}" y="{_f(y - 3.5)}"'
        return f'<rect {corner} width="7" height="7" fill="{style.colour}"/>'
    if style.marker == "diamond":
        return (
            f'<path d="M{_f(x)} {_f(y - 4.5)}L{_f(x + 4.5)} {_f(y)}L{_f(x)} {_f(y + 4.5)}'
            f'L{_f(x - 4.5)} {_f(y)}Z" fill="{style.colour}"/>'
        )
    return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="4" fill="{style.colour}"/>'


def _dash(style: _Style) -> str:
    return f' stroke-dasharray="{style.dash}"' if style.dash else ""


def _line_swatch(style: _Style, markers: bool) -> Swatch:
    def draw(x: float, y: float) -> str:
        line = (
            f'<line x1="{_f(x)}" y1="{_f(y)}" x2="{_f(x + 22)}" y2="{_f(y)}" '
            f'stroke="{style.colour}" stroke-width="2.5"{_dash(style)}/>'
        )
        return line + (_marker(style, x + 11, y) if markers else "")

    return draw


def _reference_swatch(x: float, y: float) -> str:
    return f'<line x1="{_f(x)}" y1="{_f(y)}" x2="{_f(x + 22)}" y2="{_f(y)}" {REFERENCE}/>'


def _fill_swatch(fill: str) -> Swatch:
    def draw(x: float, y: float) -> str:
        return (
            f'<rect x="{_f(x)}" y="{_f(y - 6)}" width="22" height="12" fill="{fill}" '
            'stroke="#222" stroke-width="0.5"/>'
        )

    return draw


def _unit_points(value: Any) -> list[tuple[float, float]]:
    """Valid ``[x, y]`` pairs within ``[0, 1]``; anything malformed is skipped."""
    out = []
    for item in _list(value):
        pair = _list(item)
        if len(pair) == 2:
            u, v = _number(pair[0]), _number(pair[1])
            if u is not None and v is not None and 0 <= u <= 1 and 0 <= v <= 1:
                out.append((u, v))
    return out


def _nice_ticks(top: float) -> list[float]:
    """Whole-number ticks from 0 to at least ``top``, in steps of 1, 2 or 5 times a power of 10."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / 5
    power = 10 ** math.floor(math.log10(raw))
    step = max(1.0, next(m * power for m in (1, 2, 5, 10) if m * power >= raw))
    return [i * step for i in range(math.ceil(top / step) + 1)]


# --- the four charts ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Series:
    points: list[tuple[float, float]]
    style: _Style
    label: str  # escaped


def _unit_chart(
    ident: str,
    titles: tuple[str, str, str, str],
    series: list[_Series],
    reference: str,
    markers: bool,
) -> str:
    """Curves in the unit square with a dotted diagonal; ``titles`` = title, desc, x, y labels."""
    title, desc, x_label, y_label = titles
    legend, frame = _legend(
        [(_line_swatch(s.style, markers), s.label) for s in series]
        + [(_reference_swatch, reference)]
    )
    body = _axes(frame, UNIT_TICKS, UNIT_TICKS, x_label, y_label)
    body.append(
        f'<line x1="{_f(frame.x(0))}" y1="{_f(frame.y(0))}" x2="{_f(frame.x(1))}" '
        f'y2="{_f(frame.y(1))}" {REFERENCE}/>'
    )
    for s in series:
        if not s.points:
            continue
        coords = " ".join(f"{_f(frame.x(u))},{_f(frame.y(v))}" for u, v in s.points)
        body.append(
            f'<polyline points="{coords}" fill="none" stroke="{s.style.colour}" '
            f'stroke-width="2.5"{_dash(s.style)}/>'
        )
        if markers:
            body += [_marker(s.style, frame.x(u), frame.y(v)) for u, v in s.points]
    return _svg(frame, ident, title, desc, [*body, *legend])


def _roc_chart(variants: list[Mapping[str, Any]]) -> str:
    caption = "ROC curve: true positive rate against false positive rate, per variant."
    series = []
    for i, v in enumerate(variants):
        points = _unit_points(_get(v, "score", "roc_curve"))
        points = points if len(points) >= 2 else []
        note = f"AUC {_fixed(_get(v, 'score', 'roc_auc'))}" if points else NA
        series.append(_Series(points, VARIANT_STYLES[i % 3], f"{_label(v, i)} ({note})"))
    if not any(s.points for s in series):
        return _na_figure(caption, "no ROC curve (needs positive and negative labels).")
    titles = (
        "ROC curve",
        "True positive rate against false positive rate; the dotted diagonal is chance.",
        "False positive rate",
        "True positive rate",
    )
    svg = _unit_chart("roc", titles, series, "chance", markers=False)
    return _figure(svg, caption + " The dotted diagonal is a random ranking.")


def _calibration_chart(variants: list[Mapping[str, Any]]) -> str:
    caption = "Calibration: observed bad rate against mean predicted probability, per bin."
    series = []
    for i, v in enumerate(variants):
        bins = [b for b in _list(_get(v, "score", "calibration")) if isinstance(b, Mapping)]
        points = _unit_points([[b.get("mean_predicted"), b.get("observed")] for b in bins])
        note = f"ECE {_fixed(_get(v, 'score', 'ece'))}" if points else NA
        series.append(_Series(points, VARIANT_STYLES[i % 3], f"{_label(v, i)} ({note})"))
    if not any(s.points for s in series):
        return _na_figure(caption, "no calibration bins (no labelled scores).")
    titles = (
        "Calibration curve",
        "Observed rate against mean predicted probability per bin; the diagonal is perfect.",
        "Mean predicted probability",
        "Observed bad rate",
    )
    svg = _unit_chart("calibration", titles, series, "perfect calibration", markers=True)
    return _figure(svg, caption + " Points on the dotted diagonal are perfectly calibrated.")


def _bar_chart(
    frame: _Frame,
    labels: list[str],
    stacks: list[list[tuple[float, str, str]]],
    axis_titles: tuple[str, str],
) -> tuple[list[str], list[str]]:
    """Axes and bars: ``stacks[k]`` is bottom-to-top ``(count, fill, tooltip)`` for slot ``k``.

    Returns the axes (titled ``axis_titles``, x then y) and the bars. When the x tick labels
    would overlap, only every few slots get one.
    """
    ticks = _nice_ticks(max(sum(c for c, _, _ in stack) for stack in stacks))
    y_max = ticks[-1]
    longest = max(len(html.unescape(lab)) for lab in labels)
    fits = max(1, int(PLOT_WIDTH // (CHAR_WIDTH * longest + 10)))
    every = math.ceil(len(labels) / fits)
    slot = PLOT_WIDTH / len(labels)
    x_ticks = [((k + 0.5) / len(labels), lab) for k, lab in enumerate(labels) if k % every == 0]
    y_ticks = [(t / y_max, _count(t)) for t in ticks]
    bars = []
    for k, stack in enumerate(stacks):
        low = 0.0
        for count, fill, tip in stack:
            if count > 0:
                y_top, y_low = frame.y((low + count) / y_max), frame.y(low / y_max)
                bars.append(
                    f'<rect x="{_f(LEFT + (k + 0.1) * slot)}" y="{_f(y_top)}" '
                    f'width="{_f(slot * 0.8)}" height="{_f(y_low - y_top)}" fill="{fill}" '
                    f'stroke="#222" stroke-width="0.5"><title>{tip}</title></rect>'
                )
            low += max(count, 0.0)
    return _axes(frame, x_ticks, y_ticks, *axis_titles), bars


def _lead_time_chart(champion: Mapping[str, Any]) -> str:
    caption = f"Lead time for {_label(champion, 0, limit=200)}: days from first warning to bad."
    buckets = [b for b in _list(_get(champion, "lead_time", "histogram")) if isinstance(b, Mapping)]
    warned = _count(_get(champion, "lead_time", "warned"))
    bad = _count(_get(champion, "lead_time", "bad_customers"))
    caption += f" {warned} of {bad} bad customers were warned beforehand; the rest are not shown."
    if not buckets:
        return _na_figure(caption, "no bad customer was warned beforehand.")
    labels = [f"{_count(b.get('from_days'))}\u2013{_count(b.get('to_days'))}" for b in buckets]
    counts = [max(_number(b.get("count")) or 0.0, 0.0) for b in buckets]
    tips = [f"{lab} days: {_count(c)}" for lab, c in zip(labels, counts, strict=True)]
    colour = VARIANT_STYLES[0].colour
    frame = _Frame()
    stacks = [[(c, colour, t)] for c, t in zip(counts, tips, strict=True)]
    axes, bars = _bar_chart(frame, labels, stacks, ("Days ahead", "Bad customers"))
    desc = "Bad customers by days of warning: " + "; ".join(tips)
    return _figure(_svg(frame, "lead-time", "Lead-time histogram", desc, [*axes, *bars]), caption)


def _burden_chart(champion: Mapping[str, Any]) -> str:
    caption = f"Alerts per month by level for {_label(champion, 0, limit=200)}, stacked."
    months = [m for m in _list(_get(champion, "burden", "by_month")) if isinstance(m, Mapping)]
    if not months:
        return _na_figure(caption, "no alerts by month.")
    labels = [_text(m.get("month")) for m in months]
    stacks = [
        [
            (
                max(_number(m.get(lv)) or 0.0, 0.0),
                LEVEL_FILLS[lv],
                f"{label} {LEVEL_NAMES[lv]}: {_count(m.get(lv))}",
            )
            for lv in STACKED
        ]
        for label, m in zip(labels, months, strict=True)
    ]
    legend, frame = _legend([(_fill_swatch(LEVEL_FILLS[lv]), LEVEL_NAMES[lv]) for lv in STACKED])
    axes, bars = _bar_chart(frame, labels, stacks, ("Month", "Alerts"))
    totals = [sum(stack[i][0] for stack in stacks) for i in range(len(STACKED))]
    desc = "Stacked alerts per month, bottom to top watch, amber, red. Totals: " + ", ".join(
        f"{LEVEL_NAMES[lv]} {_count(t)}" for lv, t in zip(STACKED, totals, strict=True)
    )
    svg = _svg(
        frame, "burden", "Alerts per month by level", desc, [PATTERNS, *axes, *bars, *legend]
    )
    return _figure(
        svg, caption + " Watch is plain blue, amber is orange with stripes, red is cross-hatched."
    )


CSS = """
:root { color-scheme: light; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica,
  Arial, sans-serif; color: #1a1a1a; background: #fff; }
main { max-width: 64rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.75rem; margin: 0 0 0.5rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 0.75rem; border-bottom: 1px solid #ccc; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 0.9em; overflow-wrap: anywhere; }
.facts { display: flex; flex-wrap: wrap; gap: 0.5rem 2rem; margin: 0.75rem 0; }
.facts dt { font-size: 0.85rem; color: #555; }
.facts dd { margin: 0; font-weight: 600; font-variant-numeric: tabular-nums; }
.versions { padding-left: 1.2rem; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; color: #444; padding-bottom: 0.5rem; }
th, td { padding: 0.3rem 0.6rem; border-bottom: 1px solid #e2e2e2; }
td { text-align: right; }
th[scope="row"] { text-align: left; font-weight: normal; }
thead th { text-align: right; vertical-align: bottom; border-bottom: 2px solid #555; }
thead th:first-child { text-align: left; }
.name { display: block; font-weight: normal; font-size: 0.85rem; color: #444;
  overflow-wrap: anywhere; }
tr.group th { text-align: left; background: #f2f2f2; padding-top: 0.6rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr));
  gap: 1.5rem; }
.charts h2 { grid-column: 1 / -1; }
figure { margin: 0; }
figcaption { font-size: 0.9rem; color: #333; }
svg { max-width: 100%; height: auto; }
.na { border: 1px dashed #999; padding: 2rem 1rem; text-align: center; color: #444; }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  table, figure, tr { break-inside: avoid; }
  h2 { break-after: avoid; }
  .charts { display: block; }
  .charts figure { margin-bottom: 1rem; }
}
"""
