"""Readable renderings for terminals: alerts, backtest figures, a progress line."""

from __future__ import annotations

import sys
import time
from typing import Any

_COLOURS = {"none": "32", "watch": "36", "amber": "33", "red": "31"}


def format_alert(alert: dict[str, Any], colour: bool = False) -> str:
    """``event time  LEVEL kind  customer  score  (from previous)  reasons  [model, rules]``."""
    level = str(alert.get("level", "?"))
    tag = f"{level.upper():<5}"
    if colour:
        tag = f"\x1b[{_COLOURS.get(level, '0')}m{tag}\x1b[0m"
    reasons = "; ".join(str(r.get("text", r.get("code"))) for r in alert.get("reasons", []))
    return (
        f"{alert.get('event_time', '?')}  {tag} {alert.get('kind', '?'):<10} "
        f"{alert.get('customer_id', '?'):<10} score {float(alert.get('score', 0)):.2f}  "
        f"(from {alert.get('previous_level', '?')})  {reasons}  "
        f"[model {alert.get('model_version', '?')}, rules {alert.get('rules_version', '?')}]"
    )


def format_history_entry(entry: dict[str, Any]) -> str:
    """A customer's history entry: an alert, or (``kind`` feedback) an answer in the audit trail."""
    if entry.get("kind") != "feedback":
        return format_alert(entry)
    target = f"alert {entry['alert_id']}" if entry.get("alert_id") else "the customer"
    until = f" until {entry['until']}" if entry.get("until") else ""
    note = f'  "{entry["note"]}"' if entry.get("note") else ""
    action, actor = entry.get("action", "?"), entry.get("actor", "?")
    return f"{entry.get('ts', '?')}  {action} of {target}{until} by {actor}{note}"


def format_figures(variant: dict[str, Any]) -> str:
    """A backtest variant's headline figures, a few lines for the terminal."""
    score, customers = variant["score"], variant["customer_score"]
    levels, lead, burden = variant["levels"], variant["lead_time"], variant["burden"]
    either = levels["amber_or_red"]
    lines = [
        f"{variant['name']}: rules {variant['rules_version']}, model {variant['model_version']}, "
        f"{variant['labels_learned']} labels learned",
        f"  labels (prequential): n {score['n']}, positives {score['positives']}, "
        f"ROC AUC {_num(score['roc_auc'])}, PR AUC {_num(score['pr_auc'])}, "
        f"Brier {_num(score['brier'], 4)}, ECE {_num(score['ece'], 4)}",
    ]
    if customers["n"]:
        lines.append(
            f"  customers at evaluation: n {customers['n']}, positives {customers['positives']}, "
            f"ROC AUC {_num(customers['roc_auc'])}, PR AUC {_num(customers['pr_auc'])}, "
            f"Brier {_num(customers['brier'], 4)}, ECE {_num(customers['ece'], 4)}"
        )
    for name in ("watch", "amber", "red", "amber_or_red"):
        level = levels[name]
        lines.append(
            f"  {name:<12} {level['alerts']:>7} warnings  {level['customers']:>6} customers  "
            f"precision {_pct(level['precision'])}  recall {_pct(level['recall'])}"
        )
    lines.append(
        f"  lead time (first amber/red before bad): {lead['warned']}/{lead['bad_customers']} "
        f"warned, median {_num(lead['median_days'], 1)} days, 30+ {_pct(lead['share_30'])}, "
        f"60+ {_pct(lead['share_60'])}, 90+ {_pct(lead['share_90'])}"
    )
    lines.append(
        f"  burden: {burden['alerts_per_1000_per_month']:.1f} warnings per 1,000 customers per "
        f"month, {burden['healthy_alerts_per_1000_per_month']:.1f} per 1,000 healthy; "
        f"either {either['alerts']} amber/red warnings"
    )
    return "\n".join(lines)


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


class ProgressLine:
    """A progress line on stderr for long reads of a file: messages, share of bytes, rate."""

    def __init__(self, path: str, every_s: float = 1.0) -> None:
        self.total = _count_lines(path)
        self.every_s = every_s
        self.started = time.monotonic()
        self.shown = 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.shown < self.every_s and done < self.total:
            return
        self.shown = now
        elapsed = max(now - self.started, 1e-9)
        share = done / self.total if self.total else 1.0
        bar = "#" * int(share * 30)
        end = "\n" if done >= self.total else ""
        print(
            f"\r  [{bar:<30}] {share:6.1%}  {done:,}/{self.total:,} messages  "
            f"{done / elapsed:,.0f}/s  {elapsed:,.0f} s",
            end=end,
            file=sys.stderr,
            flush=True,
        )


def _count_lines(path: str) -> int:
    count = 0
    with open(path, "rb") as data:
        while block := data.read(1 << 22):
            count += block.count(b"\n")
    return count
