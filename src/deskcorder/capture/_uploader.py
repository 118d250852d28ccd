"""The uploader thread: spool -> collector, at least once, never losing an unacknowledged event.

When: the writer tells the uploader of every chunk it spools (``spooled``),
and a round of uploads starts once ``UPLOAD_MIN_EVENTS`` are waiting or the
oldest waiting event has been in the spool for ``interval_s`` (the latency
bound; the collector may set it, see ``_status``), whichever comes first. A
round drains the spool batch after batch. With nothing spooled the thread
sleeps until the writer wakes it: an idle desk sends nothing and wakes
nothing. At start, a backlog left by an earlier agent goes out at once.

One upload at a time, oldest chunks first. ``Spool.next_upload`` commits the
batch's chunk list and batch id *before* the request goes out, so after a
timeout or a crash the same batch id carries the same events again and the
collector, which de-duplicates by batch id, stores it once. Chunks are
deleted only after a 200, and then scrubbed out of the spool's files at once
(``Spool.scrub``; retried every ``Spool.SCRUB_RETRY_S`` while another process
reads the spool).

Answers and what they mean here:
    200                     stored (or a duplicate of a stored batch): delete the chunks
    408, 429, 5xx, no reply retry the same batch; 429/503 ``Retry-After`` sets ``disabled_until``,
                            otherwise exponential backoff with jitter
    413                     too big: regroup the chunks into smaller batches (the body was refused
                            unread, so nothing was stored under that id); a single chunk -> dead letter
    401, 403, 404, 405      the server refuses *every* batch (wrong URL, auth): a configuration
                            problem, not a bad batch, so back off and retry rather than dead-letter
                            the whole backlog; except a 403 naming a ``row``: those events fall
                            outside the employee's consent and may never be stored -> deleted,
                            only their count kept in the dead-letter table
    other 4xx               the batch itself is poisoned (400, 409, 415, 422): move it to the
                            dead-letter table, count it, go on with the next one
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from typing import Callable

from ..wire import MSGPACK, encode_batch
from ._spool import Spool, Upload
from ._transport import Response, Transport, TransportError

__all__ = ["Uploader"]

log = logging.getLogger("deskcorder.capture")


class Uploader:
    BACKOFF_BASE_S = 0.5
    BACKOFF_MAX_S = 60.0
    RETRY_AFTER_MAX_S = 600.0  # a misconfigured server must not silence an agent for a day
    REQUEST_TIMEOUT_S = 30.0
    # Enough to send without waiting for the latency bound: a batch this size costs the collector
    # about what a small one does, so a busy desk uploads every couple of seconds rather than every bound.
    UPLOAD_MIN_EVENTS = 1000
    _SERVER_REFUSES_ALL = frozenset({401, 403, 404, 405})

    def __init__(self, spool: Spool, transport: Transport, device_id: str, *, max_events: int = 20_000,
                 interval_s: float = 2.0, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._spool = spool
        self._transport = transport
        self._device_id = device_id
        self._max_events = max_events
        self._interval_s = interval_s
        self._rng = rng or random.Random()
        self._clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._due_lock = threading.Lock()
        # clock() when the oldest event not yet sent was spooled (None: none known), and how many wait.
        # At start: "now minus the bound", so a backlog an earlier agent left is sent at once.
        self._oldest_at: float | None = clock() - interval_s
        self._waiting = 0
        self._round_end = -float("inf")  # clock() when the last round of uploads ended
        self._thread = threading.Thread(target=self._run, name="deskcorder-uploader", daemon=True)
        self._failures = 0  # consecutive failed attempts, for the backoff exponent
        self._drained = False  # the last upload_once found the spool empty
        self._last_batch_events = 0
        self.disabled_until = 0.0  # clock() value before which no request is sent
        self._server_asked = False  # disabled_until comes from the collector's Retry-After
        self.uploaded = 0  # events acknowledged by the collector in this process
        self.batches = 0
        self.dead_lettered = 0
        self.last_error: str | None = None

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @interval_s.setter
    def interval_s(self, seconds: float) -> None:
        # The collector's latency bound; a change applies to the wait already begun too.
        if seconds != self._interval_s:
            self._interval_s = seconds
            self._wake.set()

    def is_healthy(self) -> bool:
        return self._clock() >= self.disabled_until

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Upload what the spool holds now, whatever the triggers say."""
        with self._due_lock:
            self._oldest_at = -float("inf")
        self._wake.set()

    def spooled(self, n_events: int) -> None:
        """The writer committed a chunk of ``n_events``: start the latency clock, or upload if enough wait."""
        with self._due_lock:
            first = self._oldest_at is None
            if first:
                self._oldest_at = self._clock()
            self._waiting += n_events
            enough = self._waiting >= self.UPLOAD_MIN_EVENTS
        if first or enough:
            self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread, then try to upload what is left until the spool is empty or time is up."""
        deadline = self._clock() + timeout
        self._stop.set()
        self._wake.set()
        self._thread.join(max(0.0, deadline - self._clock()))
        if not self._server_asked:
            self.disabled_until = 0.0  # our own backoff: one last try is cheap; a server's Retry-After is not ours to skip
        while not self._thread.is_alive() and self.is_healthy():
            remaining = deadline - self._clock()
            if remaining <= 0.05 or not self.upload_once(timeout=remaining):
                break
        self._transport.close()

    # -- loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            due = self._due_in()
            if due is not None:
                due = max(due, self.disabled_until - self._clock())
            if self._spool.scrub_pending:  # acknowledged text still in the WAL: try again soon, whatever the bound
                due = self._spool.SCRUB_RETRY_S if due is None else min(due, self._spool.SCRUB_RETRY_S)
            if due is None or due > 0:
                self._wake.wait(due)
                self._wake.clear()
            if self._stop.is_set():
                break
            if self._spool.scrub_pending:
                self._scrub()
            if self._due_in() == 0 and self.is_healthy():
                self._round()

    def _due_in(self) -> float | None:
        """Seconds until a round of uploads is due (0: now), None while nothing waits in the spool."""
        with self._due_lock:
            if self._oldest_at is None:
                return None
            if self._waiting >= self.UPLOAD_MIN_EVENTS:
                return 0.0
            # Counted from the end of the last round at the earliest: rounds start interval_s apart or more.
            return max(0.0, max(self._oldest_at, self._round_end) + self._interval_s - self._clock())

    def _round(self) -> None:
        """Upload batch after batch while they come full (a backlog drains at network speed), then stop:
        chunks spooled meanwhile start the latency clock again rather than being chased one by one."""
        with self._due_lock:  # chunks spooled from now on start the clock again
            oldest_at, self._oldest_at, self._waiting = self._oldest_at, None, 0
        self._drained = False
        while not self._stop.is_set() and self.is_healthy() and self.upload_once():
            if self._last_batch_events < self._max_events:  # it took every chunk spooled until then
                break
        self._round_end = self._clock()
        failed = self._stop.is_set() or not self.is_healthy() or self.last_error is not None
        with self._due_lock:
            if self._oldest_at is None and not self._drained:
                if failed:  # what was due stays due, retried once healthy
                    self._oldest_at = oldest_at
                elif self._spool.backlog():  # the batch sent was one an earlier agent left in flight
                    self._oldest_at = self._round_end

    def upload_once(self, timeout: float | None = None) -> bool:
        """Send the next batch once. True when it left the queue (acknowledged or dead-lettered)."""
        try:
            upload = self._spool.next_upload(self._device_id, self._max_events)
        except Exception as exc:  # the spool failing must not kill the thread; the writer reports it too
            self._retry_later(f"cannot read the spool: {exc}", None)
            return False
        if upload is None:
            self._drained = True
            return False
        self._last_batch_events = upload.n_events
        body = encode_batch(upload.batch_id, upload.device_id, upload.columns, MSGPACK)
        try:
            response = self._transport.send(body, MSGPACK, timeout or self.REQUEST_TIMEOUT_S)
        except TransportError as exc:
            self._retry_later(f"batch {upload.batch_id}: no answer from the collector ({exc})", None)
            return False
        return self._handle(upload, response)

    def _handle(self, upload: Upload, response: Response) -> bool:
        status = response.status
        if 200 <= status < 300:
            self._spool.ack(upload)
            self.uploaded += upload.n_events
            self.batches += 1
            if self._failures:
                log.warning("collector reachable again; uploaded batch %s", upload.batch_id)
            self._failures = 0
            self.last_error = None
            return True
        detail = f"batch {upload.batch_id}: collector answered {status} {_text(response)}"
        if status == 413 and upload.n_chunks > 1:
            self._max_events = max(1, upload.n_events // 2)
            self._spool.release(upload)
            log.warning("%s; sending at most %d events per batch from now on", detail, self._max_events)
            return True
        # A 403 naming a row refuses this batch's events (recorded outside the employee's consent, e.g.
        # offline after a withdrawal), not every batch: storing them is never allowed, so retrying would
        # only block the backlog behind them. Keeping them would keep what the person did not consent
        # to, so they are deleted; a poisoned batch (422...) keeps its events for inspection.
        refused_events = status == 403 and _problem_row(response) is not None
        if refused_events or (400 <= status < 500 and status not in (408, 429)
                              and status not in self._SERVER_REFUSES_ALL):
            self._spool.dead_letter(upload, status, detail, keep_events=not refused_events)
            self.dead_lettered += upload.n_events
            log.error("%s; %s its %d events (dead-letter table in %s)", detail,
                      "deleted" if refused_events else "set aside", upload.n_events, self._spool.path)
            return True
        retry_after = _retry_after(response.headers.get("retry-after")) if status in (429, 503) else None
        self._retry_later(detail, retry_after)
        return False

    def _scrub(self) -> None:
        try:
            self._spool.scrub()
        except Exception as exc:  # sqlite3 errors: the next tick tries again; the thread must live on
            log.warning("cannot scrub acknowledged events out of the spool %s: %s", self._spool.path, exc)

    def _retry_later(self, detail: str, retry_after: float | None) -> None:
        self._failures += 1
        self._server_asked = retry_after is not None
        if retry_after is not None:
            delay = min(retry_after, self.RETRY_AFTER_MAX_S)
        else:
            ceiling = min(self.BACKOFF_MAX_S, self.BACKOFF_BASE_S * 2 ** min(self._failures - 1, 30))
            delay = ceiling * self._rng.uniform(0.5, 1.0)  # jitter: agents that failed together retry apart
        self.disabled_until = self._clock() + delay
        if self._failures == 1 or self.last_error is None:
            log.warning("%s; retrying in %.1f s", detail, delay)
        self.last_error = detail


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _problem_row(response: Response) -> int | None:
    """The ``row`` of the collector's error body ({"error", "field", "row"}), if it names one."""
    try:
        row = json.loads(response.body).get("row")
    except (ValueError, AttributeError):
        return None
    return row if isinstance(row, int) else None


def _text(response: Response) -> str:
    return response.body[:300].decode("utf-8", "replace").strip()
