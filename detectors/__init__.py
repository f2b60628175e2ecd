"""Per-customer detection: signals, scoring, labels, alert levels.

The modules are pure (no I/O, no clock). This file only chooses, once, whether they run from
their compiled build or from these sources (``config.native``)."""

from config.native import activate

activate(__path__, "detectors")
