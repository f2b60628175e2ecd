"""The one small interface every alert sink implements.

A sink connects and pings in ``start()`` (failing fast with :class:`SinkUnavailable` and a message
naming what it could not reach), writes a whole batch in ``write_batch()`` and returns only when
the batch is durable on its side, and releases everything in ``close()``. A failed write raises
:class:`SinkUnavailable`; the caller retries the batch and commits no offsets meanwhile, so
nothing is skipped. Writes are idempotent per ``alert_id``, so a retried batch is harmless.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from detectors.alert import Alert


class SinkUnavailable(RuntimeError):
    """A sink could not be reached or did not acknowledge a write."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An alert and its wire JSON, rendered once so every sink stores the same bytes."""

    alert: Alert
    payload: bytes
    stream_id: str | None = None  # the alert's entry id in the Redis alert stream, once written


class Sink(ABC):
    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def write_batch(self, batch: Sequence[Outgoing]) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Return if the sink answers now; raise :class:`SinkUnavailable` if not (readiness)."""
