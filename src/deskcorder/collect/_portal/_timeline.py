"""An employee's own activity for one UTC day or one week, and a session's rows one page at a time.

Pure functions over the person's own events (no HTTP, no store):

* ``activity``: for a span of time, how long each application was in front
  (per-app time, from the focus events, each focus lasting until the next one
  or the session's last event, clipped to the span) and the actions counted
  per bucket (per hour for a day, per day for a week), with the chart drawn
  (``_views.bars_svg``, the portal's one bar chart).
* ``paginate``: a session's window changes and typed runs merged in time
  order and cut into pages, so a long session is not one page of thousands of
  pixels; each page keeps both tables, with the rows of its stretch of time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import polars as pl
import pyarrow as pa
from markupsafe import Markup

from ._views import _app_label, _frame, bars_svg

__all__ = ["ACTION_KINDS", "PAGE_SIZE", "Activity", "activity", "day_start_ns", "week_of", "Page", "paginate"]

_NS = 1_000_000_000
_HOUR_NS = 3_600 * _NS
_DAY_NS = 24 * _HOUR_NS
# What a person did, as the dataset counts actions: a key pressed, a click, a scroll (not moves, not releases).
ACTION_KINDS = ("key_down", "button_down", "scroll")
PAGE_SIZE = 50  # rows (window changes and typed runs together) per session page


def day_start_ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()) * _NS


def week_of(day: dt.date) -> dt.date:
    """The Monday of ``day``'s ISO week."""
    return day - dt.timedelta(days=day.weekday())


@dataclasses.dataclass(frozen=True)
class Activity:
    apps: list[tuple[str, float]]  # (application, seconds in front), longest first
    buckets: list[tuple[str, int]]  # (label, actions), in time order
    chart: Markup

    @property
    def actions(self) -> int:
        return sum(n for _, n in self.buckets)

    @property
    def seconds(self) -> float:
        return sum(s for _, s in self.apps)


def _focus_spans(events: pa.Table) -> pl.DataFrame:
    """One row per focus: app, start, end (the next focus of its session, or the session's last event)."""
    df = _frame(events, ["session_id", "seq", "t_wall_ns", "kind", "app_class", "app_process"])
    df = df.sort(["session_id", "seq"]).with_columns(
        pl.col("t_wall_ns").max().over("session_id").alias("session_end"))
    focus = df.filter(pl.col("kind") == "focus").with_columns(
        pl.coalesce(_app_label(), pl.lit("unknown application")).alias("app"),
        pl.col("t_wall_ns").shift(-1).over("session_id").alias("next"))
    return focus.select("app", pl.col("t_wall_ns").alias("start"),
                        pl.coalesce(pl.col("next"), pl.col("session_end")).alias("end"))


def _app_seconds(events: pa.Table, start_ns: int, end_ns: int) -> list[tuple[str, float]]:
    spans = _focus_spans(events).with_columns(
        (pl.min_horizontal(pl.col("end"), pl.lit(end_ns)) - pl.max_horizontal(pl.col("start"), pl.lit(start_ns)))
        .clip(lower_bound=0).alias("ns"))
    per_app = spans.group_by("app").agg(pl.col("ns").sum()).filter(pl.col("ns") > 0)
    return sorted(((r["app"], r["ns"] / _NS) for r in per_app.iter_rows(named=True)), key=lambda a: (-a[1], a[0]))


def _counts(events: pa.Table, start_ns: int, bucket_ns: int, n: int) -> list[int]:
    t = _frame(events, ["t_wall_ns", "kind"])
    idx = (t.filter(pl.col("kind").is_in(ACTION_KINDS))
           .select(((pl.col("t_wall_ns") - start_ns) // bucket_ns).alias("i"))
           .filter((pl.col("i") >= 0) & (pl.col("i") < n)))
    per = dict(idx.group_by("i").len().iter_rows())
    return [int(per.get(i, 0)) for i in range(n)]


def activity(events: pa.Table, first: dt.date, days: int) -> Activity:
    """Per-app time and actions for ``days`` UTC days from ``first``: per hour for one day, else per day."""
    start = day_start_ns(first)
    end = start + days * _DAY_NS
    if days == 1:
        labels = [f"{h:02d}:00" for h in range(24)]
        ticks = [f"{h:02d}" if h % 4 == 0 else "" for h in range(24)]  # every fourth hour: apart at 375 px
        counts = _counts(events, start, _HOUR_NS, 24) if events.num_rows else [0] * 24
        what = "Actions per hour (UTC)"
    else:
        dates = [first + dt.timedelta(days=i) for i in range(days)]
        labels = [f"{d:%a} {d.isoformat()}" for d in dates]
        ticks = [f"{d:%a} {d.day}" for d in dates]
        counts = _counts(events, start, _DAY_NS, days) if events.num_rows else [0] * days
        what = "Actions per day (UTC)"
    buckets = list(zip(labels, counts))
    apps = _app_seconds(events, start, end) if events.num_rows else []
    return Activity(apps, buckets, bars_svg(buckets, label=what, unit="actions", ticks=ticks))


# -- a session, page by page -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Page:
    number: int
    count: int  # pages in all (at least 1)
    windows: list[dict[str, Any]]
    runs: list[Any]
    first_row: int  # 1-based, of all rows
    last_row: int
    rows: int

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.count else None


def paginate(windows: list[dict[str, Any]], runs: list[Any], number: int, size: int = PAGE_SIZE) -> Page | None:
    """Page ``number`` (1-based) of the window changes and typed runs in time order; None past the end."""
    rows: list[tuple[int, int, Any]] = sorted(
        [(w["t_wall_ns"], 0, w) for w in windows] + [(r.t_wall_ns, 1, r) for r in runs], key=lambda r: r[:2])
    count = max(1, -(-len(rows) // size))
    if number > count:
        return None
    chunk = rows[(number - 1) * size:number * size]
    return Page(number, count, [r for _, k, r in chunk if k == 0], [r for _, k, r in chunk if k == 1],
                (number - 1) * size + 1 if chunk else 0, (number - 1) * size + len(chunk), len(rows))
