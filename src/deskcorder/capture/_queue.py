"""The bounded in-memory queue between listener callbacks and the writer thread.

Listener callbacks run on the threads that read the X server; anything slow
there delays or drops the user's input. So ``submit`` only takes the clock,
appends a tuple under a lock held for microseconds and returns. Taking the
timestamp inside the same lock that orders the queue keeps the queue order
and ``t_mono_ns`` consistent across the keyboard, mouse and focus threads,
so sequence numbers never run backwards in time.

The gate (``_gate``) decides under that same lock whether each event may be
recorded at all; what it refuses is never queued and is not a loss.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ._backend import LOSS_REASONS, RawEvent
from ._gate import Gate

__all__ = ["EventQueue", "Queued"]

# (t_mono_ns, t_wall_ns, event)
Queued = tuple[int, int, RawEvent]


class EventQueue:
    """The agent's ``EventSink``: bounded, never blocking, every loss counted by reason."""

    MAX_EVENTS = 200_000  # minutes of the busiest input; only a stalled writer gets here

    def __init__(self, gate: Gate, *, max_events: int = MAX_EVENTS, wake_at: int = 2000,
                 on_failure: Callable[[BaseException], None] | None = None):
        self._lock = threading.Lock()
        self._items: list[Queued] = []
        self._max_events = max_events
        self._wake_at = wake_at
        self._ready = threading.Event()
        self.gate = gate
        self._on_failure = on_failure
        self.captured = 0
        self.lost: dict[str, int] = dict.fromkeys(LOSS_REASONS, 0)
        self.failure: BaseException | None = None

    # -- listener side ------------------------------------------------------------------
    def submit(self, event: RawEvent) -> bool:
        """Queue ``event`` if the gate lets it through; False when it was not kept (gated off or full)."""
        with self._lock:
            items = self._items
            before = len(items)
            if before >= self._max_events:
                self.lost["queue_full"] += 1
                return False
            self.gate.admit((time.monotonic_ns(), time.time_ns(), event), items)
            return self._added(before)

    def _added(self, before: int) -> bool:
        after = len(self._items)
        self.captured += after - before
        if before < self._wake_at <= after:
            self._ready.set()
        return after > before

    def record_lost(self, reason: str, quantity: int = 1) -> None:
        if reason not in self.lost:
            raise ValueError(f"unknown loss reason {reason!r}; add it to LOSS_REASONS ({', '.join(LOSS_REASONS)})")
        with self._lock:
            self.lost[reason] += quantity

    def fail(self, error: BaseException) -> None:
        self.failure = error
        self._ready.set()
        if self._on_failure is not None:
            self._on_failure(error)

    # -- agent side ---------------------------------------------------------------------
    def apply(self, change: Callable[[int, int, list[Queued]], object]) -> object:
        """Run ``change(t_mono_ns, t_wall_ns, items)`` on the gate under the queue's lock; it may append markers.

        Markers are never refused for a full queue: they are what tells a
        dataset that input is missing.
        """
        with self._lock:
            before = len(self._items)
            result = change(time.monotonic_ns(), time.time_ns(), self._items)
            self._added(before)
        return result

    # -- writer side --------------------------------------------------------------------
    def wait(self, timeout: float) -> None:
        """Sleep until ``timeout`` passes or enough events are queued to be worth a flush."""
        self._ready.wait(timeout)
        self._ready.clear()

    def wake(self) -> None:
        self._ready.set()

    def drain(self) -> list[Queued]:
        with self._lock:
            items, self._items = self._items, []
        return items
