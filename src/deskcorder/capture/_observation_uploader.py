"""Observations to the collector: ``POST /v1/observations``, authenticated like ``/v1/batches``.

Observations are not spooled: a frame is tens of kilobytes, and one lost in
a crash is one fewer picture beside events that are all on record. They
wait in a bounded outbox in memory (``MAX_OUTBOX_BYTES``); past it a new one
is refused and counted by the observer as ``outbox_full``, never dropped
silently. A round goes out ``interval_s`` after the first one waiting (the
agent's upload interval), or at once when ``BATCH_BYTES`` wait.

Answers: 2xx stored (the collector de-duplicates by ``(session_id,
action_seq)``, so a retry after a lost answer stores nothing twice); 408,
429, 5xx, 401, 404, 405 or no answer: the same observations are retried
with backoff (429/503 ``Retry-After`` honoured), as the event uploader does
for a collector that refuses every request; any other 4xx refuses these
observations for good, 403 included (no consent for them, more than the
policy's ``observe`` allows, a revoked device: the collector's word is
final there): they are counted as ``refused`` and dropped.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from typing import Callable

from ..observations import MAX_OBSERVATIONS_PER_BODY, Observation, encode_observations
from ..wire import MSGPACK
from ._transport import HttpTransport, Transport, TransportError
from ._uploader import _retry_after, _text

__all__ = ["ObservationTransport", "ObservationUploader"]

log = logging.getLogger("deskcorder.capture")


class ObservationTransport(HttpTransport):
    """``HttpTransport`` to ``<server_url>/v1/observations``."""

    PATH = "/v1/observations"


class ObservationUploader:
    MAX_OUTBOX_BYTES = 48 * 1024 * 1024  # about a minute of frames at the policy's highest rate
    BATCH_BYTES = 4 * 1024 * 1024
    BACKOFF_BASE_S, BACKOFF_MAX_S, RETRY_AFTER_MAX_S = 0.5, 60.0, 600.0
    REQUEST_TIMEOUT_S = 30.0
    _RETRY = frozenset({401, 404, 405, 408, 429})

    def __init__(self, transport: Transport, device_id: str, *, interval_s: float = 2.0,
                 on_refused: Callable[[int], None] = lambda n: None):
        self._transport = transport
        self._device_id = device_id
        self.interval_s = interval_s
        self._on_refused = on_refused
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._outbox: collections.deque[Observation] = collections.deque()
        self._bytes = 0
        self._oldest_at: float | None = None
        self._failures = 0
        self._disabled_until = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.sent_bytes = 0  # request bodies acknowledged
        self.refused = 0
        self.last_error: str | None = None

    def add(self, observation: Observation) -> bool:
        """Queue one finished observation; False when the outbox is full (the caller counts the loss)."""
        size = _size(observation)
        with self._lock:
            if self._bytes + size > self.MAX_OUTBOX_BYTES:
                return False
            self._outbox.append(observation)
            self._bytes += size
            first = self._oldest_at is None
            if first:
                self._oldest_at = time.monotonic()
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="deskcorder-observation-uploader",
                                                daemon=True)
                self._thread.start()
        if first or self._bytes >= self.BATCH_BYTES:
            self._wake.set()
        return True

    @property
    def waiting(self) -> int:
        return len(self._outbox)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread, then send what waits until it is gone, refused or time is up."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._disabled_until = 0.0
        while self._outbox and deadline - time.monotonic() > 0.05 and self._send_once(deadline - time.monotonic()):
            pass
        self._transport.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                oldest = self._oldest_at
                full = self._bytes >= self.BATCH_BYTES
            now = time.monotonic()
            if oldest is None:
                due = None
            else:
                due = max(0.0 if full else oldest + self.interval_s - now, self._disabled_until - now)
            if due is None or due > 0:
                self._wake.wait(due)
                self._wake.clear()
                continue
            while not self._stop.is_set() and self._outbox and self._send_once(self.REQUEST_TIMEOUT_S):
                pass

    def _take_batch(self) -> list[Observation]:
        with self._lock:
            batch: list[Observation] = []
            size = 0
            for observation in self._outbox:
                if batch and (len(batch) >= MAX_OBSERVATIONS_PER_BODY or size + _size(observation) > self.BATCH_BYTES):
                    break
                batch.append(observation)
                size += _size(observation)
            return batch

    def _done(self, n: int) -> None:
        with self._lock:
            for _ in range(n):
                self._bytes -= _size(self._outbox.popleft())
            self._oldest_at = time.monotonic() if self._outbox else None

    def _send_once(self, timeout: float) -> bool:
        """Send the oldest observations once; True when they left the outbox (stored or refused)."""
        batch = self._take_batch()
        if not batch:
            return False
        body = encode_observations(self._device_id, batch)
        try:
            response = self._transport.send(body, MSGPACK, timeout)
        except TransportError as exc:
            return self._retry_later(f"no answer from the collector ({exc})", None)
        status = response.status
        if 200 <= status < 300:
            self._done(len(batch))
            self.sent += len(batch)
            self.sent_bytes += len(body)
            self._failures = 0
            self.last_error = None
            return True
        detail = f"{len(batch)} observations: collector answered {status} {_text(response)}"
        if status in self._RETRY or status >= 500:
            retry_after = _retry_after(response.headers.get("retry-after")) if status in (429, 503) else None
            return self._retry_later(detail, retry_after)
        self._done(len(batch))
        self.refused += len(batch)
        self._on_refused(len(batch))
        log.error("%s; dropped them", detail)
        self.last_error = detail
        return True

    def _retry_later(self, detail: str, retry_after: float | None) -> bool:
        self._failures += 1
        if retry_after is not None:
            delay = min(retry_after, self.RETRY_AFTER_MAX_S)
        else:
            ceiling = min(self.BACKOFF_MAX_S, self.BACKOFF_BASE_S * 2 ** min(self._failures - 1, 30))
            delay = ceiling * random.uniform(0.5, 1.0)
        self._disabled_until = time.monotonic() + delay
        if self._failures == 1:
            log.warning("%s; retrying in %.1f s", detail, delay)
        self.last_error = detail
        return False


def _size(observation: Observation) -> int:
    """What an observation weighs in memory and on the wire, near enough: its frame and a few hundred bytes."""
    return 512 + (len(observation.frame.data) if observation.frame is not None else 0)
