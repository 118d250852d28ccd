"""The bounded in-memory queue between listener callbacks and the writer thread.

Listener callbacks run on the threads that read the X server; anything slow
there delays or drops the user's input. So ``submit`` only takes the clock,
appends a tuple under a lock held for microseconds and returns. Taking the
timestamp inside the same lock that orders the queue keeps the queue order
and ``t_mono_ns`` consistent across the keyboard, mouse and focus threads,
so sequence numbers never run backwards in time.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ..events import EventKind
from ._backend import LOSS_REASONS, RawEvent

__all__ = ["EventQueue", "Queued"]

# (t_mono_ns, t_wall_ns, event)
Queued = tuple[int, int, RawEvent]


class EventQueue:
    """The agent's ``EventSink``: bounded, never blocking, every loss counted by reason."""

    MAX_EVENTS = 200_000  # minutes of the busiest input; only a stalled writer gets here

    def __init__(self, *, max_events: int = MAX_EVENTS, wake_at: int = 2000,
                 on_failure: Callable[[BaseException], None] | None = None):
        self._lock = threading.Lock()
        self._items: list[Queued] = []
        self._max_events = max_events
        self._wake_at = wake_at
        self._ready = threading.Event()
        self._paused = False
        self._on_failure = on_failure
        self.captured = 0
        self.lost: dict[str, int] = dict.fromkeys(LOSS_REASONS, 0)
        self.failure: BaseException | None = None

    # -- listener side ------------------------------------------------------------------
    def submit(self, event: RawEvent) -> bool:
        with self._lock:
            if self._paused:
                return False  # not a loss: the user asked for nothing to be captured
            if len(self._items) >= self._max_events:
                self.lost["queue_full"] += 1
                return False
            self._items.append((time.monotonic_ns(), time.time_ns(), event))
            self.captured += 1
            if len(self._items) == self._wake_at:
                self._ready.set()
        return True

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
    def pause(self, reason: str) -> bool:
        """Queue a PAUSE marker and refuse everything after it; False if already paused."""
        with self._lock:
            if self._paused:
                return False
            self._items.append((time.monotonic_ns(), time.time_ns(), RawEvent(EventKind.PAUSE, reason=reason)))
            self.captured += 1
            self._paused = True
        return True

    def resume(self, reason: str) -> bool:
        with self._lock:
            if not self._paused:
                return False
            self._paused = False
            self._items.append((time.monotonic_ns(), time.time_ns(), RawEvent(EventKind.RESUME, reason=reason)))
            self.captured += 1
        return True

    @property
    def paused(self) -> bool:
        return self._paused

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
