"""The bounded in-memory queue between listener callbacks and the writer thread.

Listener callbacks run on the threads that read the X server; anything slow
there delays or drops the user's input. So ``submit`` only takes the clock,
appends a tuple under a lock held for microseconds and returns. Taking the
timestamp inside the same lock that orders the queue keeps the queue order
and ``t_mono_ns`` consistent across the keyboard, mouse and focus threads,
so sequence numbers never run backwards in time.

The gate (``_gate``) decides under that same lock whether each event may be
recorded at all; what it refuses is never queued and is not a loss.

A loss while recording leaves a GAP event where it happened (``reason``: the
loss reason, ``lost``: how many), one per reason between two drains, its count
raised in place as more are lost: the writer numbers it like any event, so the
stored session says where input is missing and the collector counts it per
device. Markers are never refused for a full queue; a loss while not recording
(the gate would have dropped those events anyway) is counted here only, so a
pause shows no trace of input.

Nothing here polls: the writer sleeps until the first event lands in an
empty queue (or ``wake_at`` events are waiting), and the status poller, while
it asks less often on an idle desk, hears of the next input through
``on_next_input``.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ..events import EventKind
from ._backend import LOSS_REASONS, RawEvent
from ._gate import Gate

__all__ = ["EventQueue", "Queued"]

# (t_mono_ns, t_wall_ns, event)
Queued = tuple[int, int, RawEvent]
_GAP = EventKind.GAP


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
        self._gaps: dict[str, int] = {}  # reason -> index in _items of its GAP marker since the last drain
        self._on_next_input: Callable[[], None] | None = None
        self.failure: BaseException | None = None

    # -- listener side ------------------------------------------------------------------
    def submit(self, event: RawEvent) -> bool:
        """Queue ``event`` if the gate lets it through; False when it was not kept (gated off or full)."""
        heard = self._on_next_input
        if heard is not None:  # someone waits for the next input, recorded or not (one call, then disarmed)
            self._on_next_input = None
            heard()
        with self._lock:
            items = self._items
            before = len(items)
            if before >= self._max_events:
                self._lose("queue_full", 1, mark=True)
                return False
            self.gate.admit((time.monotonic_ns(), time.time_ns(), event), items)
            return self._added(before)

    def _added(self, before: int) -> bool:
        after = len(self._items)
        self.captured += after - before
        # The first event into an empty queue starts the writer's age clock; wake_at events, its size trigger.
        if before < after and (before == 0 or before < self._wake_at <= after):
            self._ready.set()
        return after > before

    def record_lost(self, reason: str, quantity: int = 1, *, mark: bool = True) -> None:
        """Count ``quantity`` events lost for ``reason`` and mark the place with a GAP event (see above);
        ``mark=False`` for a caller that writes the marker where the loss is, itself (the writer)."""
        if reason not in self.lost:
            raise ValueError(f"unknown loss reason {reason!r}; add it to LOSS_REASONS ({', '.join(LOSS_REASONS)})")
        with self._lock:
            self._lose(reason, quantity, mark=mark)

    def _lose(self, reason: str, quantity: int, *, mark: bool) -> None:
        self.lost[reason] += quantity
        if not mark or not self.gate.recording:
            return
        at = self._gaps.get(reason)
        if at is None:
            self._gaps[reason] = len(self._items)
            self._items.append((time.monotonic_ns(), time.time_ns(), RawEvent(_GAP, reason=reason, lost=quantity)))
        else:
            t_mono, t_wall, gap = self._items[at]
            self._items[at] = (t_mono, t_wall, gap._replace(lost=gap.lost + quantity))

    def on_next_input(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once, on the listener thread, at the next input event (before the gate):
        cheap enough to arm every poll, and nothing to do per event while disarmed."""
        self._on_next_input = callback

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
    def wait(self, timeout: float | None) -> None:
        """Sleep until ``timeout`` passes (None: no limit), the first event arrives in an empty queue, enough
        events are queued to be worth a flush, or ``wake``. The caller reads the queue again afterwards."""
        self._ready.wait(timeout)
        self._ready.clear()

    def oldest_ns(self) -> int | None:
        """``t_mono_ns`` of the oldest event waiting, None when the queue is empty (writer side only)."""
        items = self._items
        return items[0][0] if items else None

    def __len__(self) -> int:
        return len(self._items)

    def wake(self) -> None:
        self._ready.set()

    def drain(self) -> list[Queued]:
        with self._lock:
            items, self._items = self._items, []
            self._gaps.clear()
        return items
