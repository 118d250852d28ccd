"""The writer thread: queue -> numbered, coalesced event columns -> spool chunks.

Sequence numbers are given here, after coalescing, so ``seq`` stays contiguous
from 0 for the session: a move dropped by coalescing never had a number, and
a gap downstream always means a real loss.

Mouse moves are coalesced per time slot of ``1 / move_hz`` seconds (by
``t_mono_ns``): the latest move of a slot is kept and written when a later
slot's move arrives, when the slot is over at a flush, or *before any other
event*, so clicks, keys and scrolls are never dropped or reordered and the
pointer position before a click is always on record.

Events dropped because the spool stayed unwritable are followed by a GAP
event (``spool_unavailable``, with their count) that takes the next seq, so
the hole in ``seq`` is explained where it is.

When a chunk is written (the flush triggers): as soon as ``flush_max_events``
events are waiting (size), or when the oldest event waiting is
``flush_interval_s`` old (age), whichever comes first. The age trigger is
what bounds a ``kill -9``'s loss (see ``_agent``): no event stays in memory
longer than ``flush_interval_s`` plus one commit, except a move whose
coalescing slot (``1 / move_hz``) is still open, which is written when it
closes. With nothing in memory the thread sleeps until the queue wakes it:
an idle desk costs no wake-ups.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from ..events import FIELD_NAMES, EventKind
from ._backend import RawEvent
from ._queue import EventQueue, Queued
from ._spool import Spool

__all__ = ["Writer"]

log = logging.getLogger("deskcorder.capture")

_MOVE = EventKind.MOVE
_N_FIELDS = len(FIELD_NAMES)


class Writer:
    # Events kept in memory while the spool cannot be written (disk full, I/O
    # error); past this they are dropped and counted as "spool_unavailable".
    MAX_UNSPOOLED = 500_000

    def __init__(self, queue: EventQueue, spool: Spool, session_id: str, *, move_hz: float = 60.0,
                 flush_interval_s: float = 0.2, flush_max_events: int = 2000,
                 on_spooled: Callable[[int], None] = lambda n_events: None):
        if move_hz <= 0:
            raise ValueError(f"move_hz must be > 0, got {move_hz}")
        self._queue = queue
        self._spool = spool
        self.session_id = session_id
        self._slot_ns = int(1e9 / move_hz)
        self._flush_interval_s = flush_interval_s
        self._flush_max_events = flush_max_events
        self._on_spooled = on_spooled  # after each commit, with its event count (the uploader's trigger)
        self._next_seq = 0
        self._columns = self._empty()
        self._first_seq = 0
        self._pending_move: Queued | None = None
        self._retry_ns = 0  # when a flush the spool refused is tried again
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deskcorder-writer", daemon=True)
        # The observer's (``_observe``), while observing: which seq each event got, so an observation names its action.
        self.on_numbered: Callable[[Queued, int], None] | None = None
        self.coalesced = 0
        self.spooled = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and write everything still in memory, pending move included, to the spool."""
        self._stop.set()
        self._queue.wake()
        self._thread.join(timeout)

    # -- loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            due = self._due_in()
            if due is None or due > 0:
                self._queue.wait(due)
                continue  # woken or timed out: look again (an arrival only starts the age clock)
            self._take(self._queue.drain())
            self._flush(final=False)
        self._take(self._queue.drain())
        self._flush(final=True)

    def _due_in(self) -> float | None:
        """Seconds until the next flush is due (0: now), None while nothing is held in memory."""
        if len(self._queue) >= self._flush_max_events:
            return 0.0
        held = [t for t in (self._queue.oldest_ns(), self._pending_move and self._pending_move[0]) if t]
        due_ns = min(held) + int(self._flush_interval_s * 1e9) if held else None
        if self._columns["seq"]:  # left by a flush the spool refused: retried at the flush interval
            due_ns = self._retry_ns if due_ns is None else min(due_ns, self._retry_ns)
        if due_ns is None:
            return None
        return max(0.0, (due_ns - time.monotonic_ns()) / 1e9)

    def _take(self, items: list[Queued]) -> None:
        slot_ns = self._slot_ns
        for item in items:
            if item[2].kind is _MOVE:
                pending = self._pending_move
                if pending is not None:
                    if item[0] // slot_ns == pending[0] // slot_ns:
                        self.coalesced += 1
                    else:
                        self._append(pending)
                self._pending_move = item
            else:
                if self._pending_move is not None:
                    self._append(self._pending_move)
                    self._pending_move = None
                self._append(item)
            if len(self._columns["seq"]) >= self._flush_max_events and self.last_error is None:
                self._flush(final=False)

    def _append(self, item: Queued) -> None:
        t_mono, t_wall, event = item
        cols = self._columns
        cols["session_id"].append(self.session_id)
        cols["seq"].append(self._next_seq)
        cols["t_mono_ns"].append(t_mono)
        cols["t_wall_ns"].append(t_wall)
        cols["kind"].append(event.kind.value)
        for name, value in zip(FIELD_NAMES[5:], event[1:]):
            cols[name].append(value)
        if self.on_numbered is not None:
            self.on_numbered(item, self._next_seq)
        self._next_seq += 1

    def _flush(self, *, final: bool) -> None:
        pending = self._pending_move
        # A move whose slot is over can no longer be replaced: write it now rather than at the next event.
        if pending is not None and (final or time.monotonic_ns() // self._slot_ns > pending[0] // self._slot_ns):
            self._append(pending)
            self._pending_move = None
        n = len(self._columns["seq"])
        if n == 0:
            return
        try:
            self._spool.append(self.session_id, self._first_seq, self._columns)
        except Exception as exc:  # sqlite3 errors, disk full: keep the events and retry next flush
            self._retry_ns = time.monotonic_ns() + int(self._flush_interval_s * 1e9)
            if self.last_error is None:
                log.warning("cannot write to the spool %s: %s; keeping events in memory", self._spool.path, exc)
            self.last_error = str(exc)
            if n > self.MAX_UNSPOOLED or final:
                last = (self._columns["t_mono_ns"][-1], self._columns["t_wall_ns"][-1])
                self._queue.record_lost("spool_unavailable", n, mark=False)
                self._reset()
                self._append((*last, RawEvent(EventKind.GAP, reason="spool_unavailable", lost=n)))
            return
        if self.last_error is not None:
            log.warning("spool writable again; %d events written", n)
            self.last_error = None
        self.spooled += n
        self._reset()
        self._on_spooled(n)

    def _reset(self) -> None:
        self._columns = self._empty()
        self._first_seq = self._next_seq

    @staticmethod
    def _empty() -> dict[str, list[Any]]:
        return {name: [] for name in FIELD_NAMES}
