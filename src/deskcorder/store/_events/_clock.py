"""The collector's clock: how far ahead of it an event may be stamped (``MAX_CLOCK_SKEW_S``).

Consent is checked against the wall-clock time the device stamps on each
event (``_people/_consent.py``), and a consent period that is still open lasts
"forever". So a device could stamp events a year ahead, or in 2200, while
consent held: they were stored, stayed after a withdrawal (they fall before
no withdrawal), went into datasets, and retention, which deletes partitions
*older* than ``retention_days``, never reached their date folder.

Hence two rules, both against the store's clock (the collector's, or the one
a test injects as ``EventStore(clock=...)``):

- ``check_not_ahead``: a batch with any event stamped more than
  ``max_clock_skew_s`` ahead of now is refused whole (``ClockAhead``, which
  the collector answers as 422 naming the field and the row). ``write_batch``
  and the fleet collector's ``check_batch`` both call it through
  ``EventStore._check_stamps``, so embedded and fleet collectors refuse alike.
- retention (``_lifecycle/_retention.py``) also deletes every date partition that begins
  more than the skew after now: whatever an older version or a wrong clock
  left there can never be inside anyone's consent.

Five minutes by default in a collector (``deskcorder serve``, embedded and
fleet; ``--max-clock-skew SECONDS`` changes it): NTP keeps machines within
milliseconds, and a desk without it drifts seconds a day, while nothing
legitimate is ever stamped in the future. An ``EventStore`` opened by a
library user checks nothing unless given a skew: the clock that matters is
the collector's. A fleet writer checks nothing either: the collector checked
before acknowledging, and a writer whose clock lags must not drop acked batches.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from .._errors import ClockAhead, InvalidInput

__all__ = ["MAX_CLOCK_SKEW_S", "Clock", "utc_now", "check_skew", "check_not_ahead", "ns_of", "iso_ns"]

MAX_CLOCK_SKEW_S = 300.0

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def check_skew(max_clock_skew_s: float | None) -> float | None:
    if max_clock_skew_s is None:
        return None
    if not isinstance(max_clock_skew_s, (int, float)) or not 0 <= max_clock_skew_s <= 7 * 86400:
        raise InvalidInput(f"max_clock_skew_s must be 0 to 604800 seconds (a week), got {max_clock_skew_s!r}; "
                           f"the default is {MAX_CLOCK_SKEW_S:.0f}", field="max_clock_skew_s")
    return float(max_clock_skew_s)


def ns_of(when: dt.datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def iso_ns(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_not_ahead(t_wall_ns: pa.ChunkedArray | pa.Array, now: dt.datetime, max_clock_skew_s: float) -> None:
    """``ClockAhead`` naming the first event stamped more than the skew after ``now``; nothing else is looked at."""
    now_ns = ns_of(now)
    ahead = pc.greater(t_wall_ns, pa.scalar(now_ns + int(max_clock_skew_s * 1e9), pa.int64()))
    if not pc.any(ahead).as_py():
        return
    row = pc.index(ahead, True).as_py()
    t = t_wall_ns[row].as_py()
    raise ClockAhead(f"event row {row} is stamped t_wall_ns {t} ({iso_ns(t)}), {(t - now_ns) / 1e9:.0f} s ahead of "
                     f"this collector's clock ({iso_ns(now_ns)}); at most {max_clock_skew_s:.0f} s ahead is "
                     f"accepted, so nothing from this batch was stored. Set the device's clock (NTP) and send "
                     f"its events again stamped with the right time", field="events.t_wall_ns", row=row)
