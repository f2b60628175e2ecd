"""Per-customer detection: signals, scoring, labels, alert levels. Pure: no I/O, no clock."""

from config.native import activate

activate(__path__, "detectors")
