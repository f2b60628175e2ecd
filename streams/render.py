"""Readable one-line renderings of alerts for terminals."""

from __future__ import annotations

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
