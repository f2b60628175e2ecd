"""The Prometheus text exposition format (version 0.0.4), written out for a handful of metrics.

A worker's counters are plain integers on the objects that own them (the pipeline, the delivery,
the watchdog); ``/metrics`` (``streams.web``) reads them into :class:`Family` values at scrape
time and :func:`render` writes the text. Nothing here runs per event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Sample:
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    suffix: str = ""  # "_bucket", "_sum", "_count" for histograms


@dataclass(frozen=True, slots=True)
class Family:
    """One metric: ``kind`` is ``counter``, ``gauge`` or ``histogram``."""

    name: str
    kind: str
    help: str
    samples: Sequence[Sample]


def histogram(
    name: str,
    help: str,
    bounds: Sequence[float],
    counts: Sequence[int],
    sum_value: float,
) -> Family:
    """A histogram from per-bucket counts (``len(bounds) + 1`` slots, the last above every
    bound), made cumulative as the format wants."""
    if len(counts) != len(bounds) + 1:
        raise ValueError("counts needs one slot per bound and one for +Inf")
    samples = []
    running = 0
    for bound, count in zip([*bounds, math.inf], counts, strict=True):
        running += count
        samples.append(Sample(running, {"le": _number(bound)}, "_bucket"))
    samples.append(Sample(sum_value, suffix="_sum"))
    samples.append(Sample(running, suffix="_count"))
    return Family(name, "histogram", help, samples)


def render(families: Iterable[Family]) -> str:
    lines = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for sample in family.samples:
            lines.append(
                f"{family.name}{sample.suffix}{_labels(sample.labels)} {_number(sample.value)}"
            )
    return "\n".join(lines) + "\n"


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape_label(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))
