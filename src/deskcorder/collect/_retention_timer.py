"""Apply the policy's retention in the background of a running collector: at start, then every interval."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Callable

from ..store import EventStore, StoreError

__all__ = ["RetentionTimer", "RETENTION_INTERVAL_S", "RETENTION_ACTOR"]

log = logging.getLogger("deskcorder.collect")

RETENTION_INTERVAL_S = 3600.0
RETENTION_ACTOR = "collector:retention"


class RetentionTimer:
    """A daemon thread calling ``store.apply_retention(clock(), ...)``; a failed run is logged and retried next time."""

    def __init__(self, store: EventStore, interval_s: float = RETENTION_INTERVAL_S,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)):
        if interval_s <= 0:
            raise ValueError(f"retention interval must be positive, got {interval_s}")
        self._store = store
        self._interval = interval_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for deleted in self._store.apply_retention(self._clock(), RETENTION_ACTOR):
                    log.info("retention: deleted %s (%d files, %d events)", deleted.date, deleted.files,
                             deleted.events)
            except StoreError as exc:
                log.error("retention run failed, retrying in %.0f s: %s", self._interval, exc)
            except Exception:  # never let the timer die silently with the collector still up
                log.exception("retention run failed unexpectedly, retrying in %.0f s", self._interval)
            self._stop.wait(self._interval)
