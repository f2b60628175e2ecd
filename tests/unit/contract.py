"""Helpers shared by the signal contract suites (test_detectors, test_signals)."""

from __future__ import annotations

from typing import Any


def only_json_values(value: Any) -> bool:
    """True when ``value`` is made of JSON values only (no tuples, objects or non-str keys)."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list):
        return all(only_json_values(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and only_json_values(v) for k, v in value.items())
    return False
