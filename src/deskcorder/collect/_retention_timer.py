"""Apply the policy's retention in the background of a running collector: at start, then every interval.

Each deletion is written to the audit log by the store (``retention.delete``)
and reported here as one line on the collector's output, like
``deskcorder retention apply`` prints it. Through ``report``, not ``logging``:
uvicorn configures only its own loggers, so an INFO record of ours would be
dropped and an operator watching the collector would never see a deletion.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
from typing import Callable

from ..store import EventStore, RetentionDeletion, StoreError

__all__ = ["RetentionTimer", "RETENTION_INTERVAL_S", "RETENTION_ACTOR", "describe"]

log = logging.getLogger("deskcorder.collect")

RETENTION_INTERVAL_S = 3600.0
RETENTION_ACTOR = "collector:retention"


def _print_line(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


class RetentionTimer:
    """A daemon thread calling ``store.apply_retention(clock(), ...)``; a failed run is logged and retried next time.

    ``clock`` is the time retention is applied as of (tests pass a later one);
    ``report`` gets one line per deleted partition (default: printed to stdout).
    """

    def __init__(self, store: EventStore, interval_s: float = RETENTION_INTERVAL_S,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
                 report: Callable[[str], None] = _print_line):
        if interval_s <= 0:
            raise ValueError(f"retention interval must be positive, got {interval_s}")
        self._store = store
        self._interval = interval_s
        self._clock = clock
        self._report = report
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self.runs = 0  # completed runs, failed or not (tests wait on it)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def run_once(self) -> list[RetentionDeletion]:
        """One retention run now, reported; StoreError propagates."""
        deleted = self._store.apply_retention(self._clock(), RETENTION_ACTOR)
        for d in deleted:
            self._report(f"deskcorder retention: deleted {d.describe()} (audited as retention.delete)")
        return deleted

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except StoreError as exc:
                log.error("retention run failed, retrying in %.0f s: %s", self._interval, exc)
            except Exception:  # never let the timer die silently with the collector still up
                log.exception("retention run failed unexpectedly, retrying in %.0f s", self._interval)
            self.runs += 1
            self._stop.wait(self._interval)
