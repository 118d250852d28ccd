"""An employee's own activity for one day or one week in their time zone, and a session's rows one page at
a time.

Pure functions over the person's own events (no HTTP, no store):

* ``activity``: for a span of time, how long each application was in front
  (per-app time, from the focus events, each focus lasting until the next one
  or the session's last event, clipped to the span) and the actions counted
  per bucket (per hour for a day, per day for a week), with the chart drawn
  (``_views.bars_svg``, the portal's one bar chart); ``timeline`` is the whole
  page's content. Days and hours are those of a time zone (``?tz=``, an IANA
  name, UTC by default): the pages run no script, so the browser cannot say
  which zone it is in; the person picks it on the page and the links keep it.
* ``paginate``: a session's window changes and typed runs merged in time
  order and cut into pages, so a long session is not one page of thousands of
  pixels; each page keeps both tables, with the rows of its stretch of time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import urllib.parse
import zoneinfo
from typing import Annotated, Any, Sequence

import polars as pl
import pyarrow as pa
from markupsafe import Markup
from pydantic import AfterValidator

from ...store import SessionInfo
from ._views import _app_label, _frame, bars_svg

__all__ = ["ACTION_KINDS", "PAGE_SIZE", "UTC", "Activity", "activity", "check_zone", "day_start_ns", "local_day",
           "timeline", "week_of", "Zone", "Page", "paginate"]

_NS = 1_000_000_000
_HOUR_NS = 3_600 * _NS
_DAY_NS = 24 * _HOUR_NS
# What a person did, as the dataset counts actions: a key pressed, a click, a scroll (not moves, not releases).
ACTION_KINDS = ("key_down", "button_down", "scroll")
PAGE_SIZE = 50  # rows (window changes and typed runs together) per session page


UTC = zoneinfo.ZoneInfo("UTC")


@functools.cache
def _zone_names() -> frozenset[str]:
    # "localtime" is whatever zone the server is in: not a place a person can name.
    return frozenset((zoneinfo.available_timezones() | {"UTC"}) - {"localtime"})


def check_zone(name: str) -> str:
    """``name`` if it is an IANA time zone this machine knows (a fixed list: no path from a URL reaches the
    disk), else ValueError saying what to send."""
    if name not in _zone_names():
        raise ValueError(f"unknown time zone {name[:64]!r}: send an IANA name such as Europe/Berlin, "
                         f"America/New_York or UTC")
    return name


# A query field's type: a time zone's name, refused with 422 naming the field when unknown.
Zone = Annotated[str, AfterValidator(check_zone)]


def day_start_ns(day: dt.date, tz: dt.tzinfo = UTC) -> int:
    """The first instant of ``day`` in ``tz`` (its midnight, or the first hour after it where a DST change
    skips midnight)."""
    return int(dt.datetime.combine(day, dt.time(), tz).timestamp()) * _NS


def local_day(t_ns: int, tz: dt.tzinfo = UTC) -> dt.date:
    return dt.datetime.fromtimestamp(t_ns / _NS, tz).date()


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


def _counts(events: pa.Table, edges: list[int]) -> list[int]:
    """Actions in each [edges[i], edges[i + 1]) (an hour, or a local day of 23 to 25 hours)."""
    n = len(edges) - 1
    if events.num_rows == 0:
        return [0] * n
    t = _frame(events, ["t_wall_ns", "kind"]).filter(pl.col("kind").is_in(ACTION_KINDS))["t_wall_ns"]
    idx = pl.Series("edges", edges, pl.Int64).search_sorted(t, side="right") - 1
    per = dict(idx.filter((idx >= 0) & (idx < n)).value_counts().iter_rows())
    return [int(per.get(i, 0)) for i in range(n)]


def activity(events: pa.Table, first: dt.date, days: int, tz: dt.tzinfo = UTC) -> Activity:
    """Per-app time and actions for ``days`` days from ``first`` in ``tz``: per hour for one day (23 or 25
    hours on a day the clocks change, each hour named by the local time it starts at), else per day."""
    zone = str(tz)
    bounds = [day_start_ns(first + dt.timedelta(days=i), tz) for i in range(days + 1)]
    if days == 1:
        edges = list(range(bounds[0], bounds[1], _HOUR_NS)) + [bounds[1]]
        starts = [dt.datetime.fromtimestamp(e / _NS, tz) for e in edges[:-1]]
        # On a day of 23 or 25 hours an hour's name alone repeats or skips: it then says which offset it is in.
        labels = [f"{s:%H}:00" + (f" {s:%Z}" if len(starts) != 24 else "") for s in starts]
        ticks = [f"{s:%H}" if s.hour % 4 == 0 and s.minute == 0 else "" for s in starts]  # apart at 375 px
        what = f"Actions per hour ({zone})"
    else:
        edges = bounds
        dates = [first + dt.timedelta(days=i) for i in range(days)]
        labels = [f"{d:%a} {d.isoformat()}" for d in dates]
        ticks = [f"{d:%a} {d.day}" for d in dates]
        what = f"Actions per day ({zone})"
    buckets = list(zip(labels, _counts(events, edges)))
    apps = _app_seconds(events, bounds[0], bounds[-1]) if events.num_rows else []
    return Activity(apps, buckets, bars_svg(buckets, label=what, unit="actions", ticks=ticks))


def timeline(sessions: Sequence[SessionInfo], events: pa.Table, day: dt.date | None, view: str,
             zone: str = "UTC") -> dict[str, Any]:
    """What me_timeline.html shows of one person's ``sessions`` and ``events``: ``day`` (by default the last
    one recorded) or its ISO week, in the time zone ``zone`` (a name ``check_zone`` accepts); the links to
    the span before and after keep the zone."""
    tz = zoneinfo.ZoneInfo(check_zone(zone))
    if day is None:
        last = max((s.last_t_wall_ns for s in sessions), default=None)
        day = local_day(last, tz) if last is not None else dt.datetime.now(tz).date()
    first, days = (week_of(day), 7) if view == "week" else (day, 1)
    step = dt.timedelta(days=days)
    start, end = day_start_ns(first, tz), day_start_ns(first + step, tz)
    in_span = [s for s in sorted(sessions, key=lambda s: s.first_t_wall_ns)
               if s.first_t_wall_ns < end and s.last_t_wall_ns >= start]

    def at(t_ns: int, fmt: str) -> str:  # a time in the zone, with its abbreviation ("UTC", "CET", "+0530")
        return dt.datetime.fromtimestamp(t_ns / _NS, tz).strftime(fmt + " %Z")

    return {"view": view, "day": day, "first": first, "last": first + step - dt.timedelta(days=1),
            "previous": first - step, "next": first + step, "activity": activity(events, first, days, tz),
            "sessions": in_span, "recorded": sorted({local_day(s.first_t_wall_ns, tz) for s in sessions}),
            "zone": zone, "zone_query": "" if zone == "UTC" else "&tz=" + urllib.parse.quote(zone, safe="/"),
            "at": at}


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
