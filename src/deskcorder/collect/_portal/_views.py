"""What the pages show, computed from events and records: pure functions, no HTTP and no store.

* ``policy_in_words``: a policy as sentences an employee can check.
* ``session_summaries`` and ``events_per_day`` (with ``bar_chart_svg``): an
  employee's sessions and activity chart, from their own events; ``bars_svg``
  draws every bar chart of the portal (this one and the timeline's).
* ``typed_runs``: the text an employee typed, one run per stretch of typing,
  with what the privacy stage would redact marked. Shown only to its author.
* ``dataset_redactions`` and ``replaced_in_words``: what a dataset build of a
  session would replace, counted by the build's own code, as a sentence.
* ``k_anonymous``: the admin's per-application aggregate with every group of
  fewer than ``K_ANONYMITY`` people suppressed; ``activity_by_app`` computes
  it from events (the recount the store's ingest-time counts must equal).
* ``dataset_card``: the sections of a dataset card, read defensively from a
  ``dataset.build`` audit entry (whatever keys the builder wrote).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import html
from typing import Any, Iterable, Sequence

import polars as pl
import pyarrow as pa
from markupsafe import Markup, escape

from ...policy import Policy
from ...store import SessionInfo

__all__ = ["K_ANONYMITY", "policy_in_words", "SessionSummary", "session_summaries", "events_per_day",
           "bars_svg", "bar_chart_svg", "TypedRun", "typed_runs", "dataset_redactions", "replaced_in_words", "focus_changes",
           "AppActivity", "activity_by_app", "k_anonymous",
           "dataset_card"]

K_ANONYMITY = 5  # an aggregate is shown only when at least this many people contribute to it
_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_MAX_CHART_DAYS = 366

_DAY_NAMES = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday",
              "sat": "Saturday", "sun": "Sunday"}


def policy_in_words(policy: Policy | None) -> list[str]:
    if policy is None:
        return ["No recording policy has been set, so nothing is recorded."]
    lines = []
    if not policy.apps:
        lines.append("No application may be recorded.")
    for rule in policy.apps:
        parts = []
        if rule.wm_class:
            parts.append(f"windows of the application “{rule.wm_class}”")
        if rule.process:
            parts.append(f"windows of the program “{rule.process}”")
        if rule.title_include:
            if rule.title_include == [".*"]:
                parts.append("any window" if not parts else "whatever their title")
            else:
                parts.append("whose title matches " + " or ".join(f"“{p}”" for p in rule.title_include))
        text = "Recorded: " + ", ".join(parts)
        if rule.title_exclude:
            text += ", except windows whose title matches " + " or ".join(f"“{p}”" for p in rule.title_exclude)
        lines.append(text + ".")
    if policy.hours is None:
        lines.append("At any time of day, every day.")
    else:
        days = ", ".join(_DAY_NAMES[d] for d in policy.hours.days) or "no day"
        lines.append(f"Only on {days}, from {policy.hours.start} to {policy.hours.end} ({policy.hours.timezone}).")
    lines.append("Recorded: keys pressed (and the characters they typed), mouse movements, clicks and scrolling, "
                 "and the name and title of the active window. Nothing else: no screenshots, no audio.")
    lines.append(f"Recorded data is kept for {policy.retention_days} days, then deleted.")
    return lines


# -- an employee's own timeline -----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SessionSummary:
    session: SessionInfo
    hostname: str
    apps: list[str]
    counts: dict[str, int]  # kind -> events

    @property
    def seconds(self) -> float:
        return (self.session.last_t_wall_ns - self.session.first_t_wall_ns) / _NS


def _frame(events: pa.Table, columns: Iterable[str]) -> pl.DataFrame:
    return pl.from_arrow(events.select(list(columns)))  # type: ignore[return-value]


def _app_label() -> pl.Expr:
    return pl.coalesce(pl.col("app_class"), pl.col("app_process"))


def session_summaries(events: pa.Table, sessions: list[SessionInfo], hostnames: dict[str, str]
                      ) -> list[SessionSummary]:
    """Newest session first, each with the applications it visited and its events counted by kind."""
    df = _frame(events, ["session_id", "kind", "app_class", "app_process"])
    counts: dict[str, dict[str, int]] = {}
    for row in df.group_by(["session_id", "kind"]).len().iter_rows(named=True):
        counts.setdefault(row["session_id"], {})[row["kind"]] = row["len"]
    apps: dict[str, list[str]] = {}
    focus = df.filter(pl.col("kind") == "focus").with_columns(_app_label().alias("app")).drop_nulls("app")
    for row in focus.group_by("session_id").agg(pl.col("app").unique(maintain_order=True)).iter_rows(named=True):
        apps[row["session_id"]] = row["app"]
    return [SessionSummary(s, hostnames.get(s.device_id, s.device_id), apps.get(s.session_id, []),
                           counts.get(s.session_id, {}))
            for s in sorted(sessions, key=lambda s: s.first_t_wall_ns, reverse=True)]


def events_per_day(events: pa.Table) -> list[tuple[dt.date, int]]:
    """(UTC date, events) for every day from the first to the last (gaps as 0), at most a year back."""
    if events.num_rows == 0:
        return []
    df = _frame(events, ["t_wall_ns"]).with_columns((pl.col("t_wall_ns") // _DAY_NS).alias("day"))
    per_day = dict(df.group_by("day").len().iter_rows())
    last = max(per_day)
    first = max(min(per_day), last - _MAX_CHART_DAYS + 1)
    epoch = dt.date(1970, 1, 1)
    return [(epoch + dt.timedelta(days=d), per_day.get(d, 0)) for d in range(first, last + 1)]


# Chart geometry, in viewBox units: the SVG is drawn 640 wide and scaled to the page, so on a 375 px phone one
# unit is about half a pixel. portal.css sets chart text to 22 units below 40rem (about 11 px there) and the
# font-size here (13) holds on wider screens; margins are sized for the larger of the two.
_CHART_W, _CHART_H = 640, 200
_CHART_FONT, _PHONE_FONT = 13, 22
_MAX_BAR_W = 96  # so that a chart of one or two days is not one wide block
_CHAR_W = 0.6  # a character's width as a share of the font size (digits, Latin letters, system-ui)


def bars_svg(bars: Sequence[tuple[str, int]], *, label: str, unit: str, ticks: Sequence[str] | None = None,
             empty: str = "Nothing recorded yet.") -> Markup:
    """Counts as an inline SVG bar chart (no script, so the pages' CSP allows it), drawn on the server.

    ``bars``: (name, count) in order; each bar's tooltip says "name: count unit". ``ticks``: the text under
    each bar ("" for none), placed under its bar but kept inside the chart; going left to right, a label that
    would touch the one before it at the phone's font size is left out, so many bars get every n-th label.
    No bars at all: the ``empty`` sentence instead of a chart.
    """
    if not bars:
        return Markup(f'<p class="muted">{escape(empty)}</p>')
    top = max(n for _, n in bars) or 1
    width, height = _CHART_W, _CHART_H
    left = 10 + int(_PHONE_FONT * _CHAR_W * len(str(top)))  # the largest count fits left of the axis
    bottom, top_margin = 30, 24
    plot_w, plot_h = width - left - 8, height - bottom - top_margin
    bar_w = min(_MAX_BAR_W, plot_w / len(bars))
    base = height - bottom
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(label)}">',
             f'<text x="{left - 6}" y="{top_margin + 4}" text-anchor="end" font-size="{_CHART_FONT}">{top}</text>',
             f'<text x="{left - 6}" y="{base}" text-anchor="end" font-size="{_CHART_FONT}">0</text>',
             f'<line x1="{left}" y1="{base}" x2="{width - 4}" y2="{base}" stroke="#888"/>']
    for i, (name, n) in enumerate(bars):
        h = plot_h * n / top
        x = left + i * bar_w
        parts.append(f'<rect class="bar" x="{x + 0.5:.1f}" y="{base - h:.1f}" width="{max(bar_w - 1.5, 1):.1f}" '
                     f'height="{h:.1f}" fill="#3b6ea8"><title>{escape(name)}: {n} {escape(unit)}</title></rect>')
    end = -_CHART_W  # where the last label drawn ends: a label that would touch it is left out
    for i, tick in enumerate(ticks or ()):
        if not tick:
            continue
        centre, w = left + (i + 0.5) * bar_w, _PHONE_FONT * _CHAR_W * len(tick)
        start = min(max(centre - w / 2, left), width - 4 - w)  # within the chart, as near the bar as it fits
        if start < end + _PHONE_FONT / 4:
            continue
        end = start + w
        parts.append(f'<text class="tick" x="{start + w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
                     f'font-size="{_CHART_FONT}">'
                     f'{escape(tick)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart_svg(days: list[tuple[dt.date, int]]) -> Markup:
    """Events per day (``events_per_day``) as a chart; days named "3 Dec" under it, as many as fit."""
    return bars_svg([(d.isoformat(), n) for d, n in days], label="Events per day", unit="events",
                    ticks=[f"{d.day} {d:%b}" for d, _ in days], empty="No events recorded yet.")


# -- typed text, for its author only --------------------------------------------------------------

_MODIFIERS = {"shift", "shift_l", "shift_r", "ctrl", "ctrl_l", "ctrl_r", "alt", "alt_l", "alt_r", "alt_gr",
              "cmd", "cmd_l", "cmd_r", "caps_lock", "num_lock", "scroll_lock"}
_CHORD = {"ctrl", "ctrl_l", "ctrl_r", "alt", "alt_l", "alt_r", "cmd", "cmd_l", "cmd_r"}  # these make hotkeys


@dataclasses.dataclass(frozen=True)
class TypedRun:
    t_wall_ns: int
    app: str
    title: str
    text: str  # as typed (backspaces applied)
    ended_by: str | None  # the key that ended it (enter, tab, ...), or None
    shown: Markup  # the text as a dataset would keep it (deskcorder.privacy.Redactor), redactions marked
    redactions: int  # spans the redactor replaced


@functools.cache
def _redactor() -> Any:
    try:
        from ...privacy import Redactor
    except ImportError:  # the privacy stage is optional to the portal: show the text as typed
        return None
    return Redactor()


def _redacted(text: str, app: str, title: str, context: str | None = None,
              known: tuple[str, ...] = ()) -> tuple[Markup, int]:
    """The text as a dataset would keep it (``deskcorder.privacy.Redactor``), each placeholder marked.

    As the build does (``deskcorder.dataset._typed``), the line entered just before is passed as context
    (it tells a password typed after ``sudo``) and the known identifiers (logins, hostnames) are replaced."""
    redactor = _redactor()
    spans: list[Any] = []
    if redactor is not None:
        joined = text if context is None else context + "\n" + text
        offset = 0 if context is None else len(context) + 1
        try:
            found = redactor.find_spans(joined, app_class=app or None, window_title=title or None,
                                        known_identifiers=known)
        except Exception:  # a redactor bug must never hide the page from its author
            found = []
        spans = [s._replace(start=max(s.start, offset) - offset, end=s.end - offset)
                 for s in found if s.end > offset]  # the previous line's own spans are its own
    parts: list[str] = []
    pos = 0
    for span in spans:  # sorted and disjoint, as the redactor applies them
        parts.append(html.escape(text[pos:span.start]))
        parts.append(f'<mark class="redacted" title="removed before any dataset">&lt;{html.escape(span.kind)}&gt;'
                     f'</mark>')
        pos = span.end
    parts.append(html.escape(text[pos:]))
    return Markup("".join(parts)), len(spans)


def typed_runs(events: pa.Table, known_identifiers: Iterable[str] = ()) -> list[TypedRun]:
    """Stretches of typing in one session (sorted by seq): a run ends at a non-character key, a hotkey,
    a click, a window change or a pause; backspace removes the last character. ``known_identifiers``:
    what the dataset build replaces besides the detectors' finds (the store's logins and hostnames)."""
    known = tuple(k for k in known_identifiers if k)
    rows = _frame(events, ["seq", "t_wall_ns", "kind", "key", "char", "app_class", "app_process", "window_title"]
                  ).filter(pl.col("kind").is_in(["key_down", "key_up", "focus", "button_down", "pause", "resume"])
                           ).sort("seq").iter_rows(named=True)
    runs: list[TypedRun] = []
    held: set[str] = set()
    app = title = ""
    start: int | None = None
    text: list[str] = []
    entered: str | None = None  # the run just ended by Enter, while nothing else happened since

    def close(ended_by: str | None) -> None:
        nonlocal start, text, entered
        if start is not None:
            typed = "".join(text)
            shown, n = _redacted(typed, app, title, entered, known)
            runs.append(TypedRun(start, app, title, typed, ended_by, shown, n))
            entered = typed if ended_by == "enter" else None
        else:
            entered = None
        start, text = None, []

    for r in rows:
        kind, key = r["kind"], (r["key"] or "").lower()
        if kind == "key_up":
            held.discard(key)
            continue
        if kind != "key_down":
            close(None)
            if kind == "focus":
                app = r["app_class"] or r["app_process"] or "unknown application"
                title = r["window_title"] or ""
            continue
        if key in _MODIFIERS:
            held.add(key)
            continue
        if r["char"] and r["char"].isprintable() and not held & _CHORD:
            if start is None:
                start = r["t_wall_ns"]
            text.append(r["char"])
        elif key == "backspace" and start is not None and not held & _CHORD:
            if text:
                text.pop()
        else:
            chord = "+".join(sorted(k.split("_")[0] for k in held & _CHORD))
            close(f"{chord}+{key}" if chord else key)
    close(None)
    return runs


# How the page names each placeholder kind: (one, several).
_KIND_WORDS: dict[str, tuple[str, str]] = {
    "EMAIL": ("e-mail", "e-mails"), "PHONE": ("phone number", "phone numbers"),
    "CREDIT_CARD": ("card number", "card numbers"), "IBAN": ("IBAN", "IBANs"),
    "NATIONAL_ID": ("national id", "national ids"), "SECRET": ("secret", "secrets"),
    "PASSWORD": ("password", "passwords"), "MAC": ("MAC address", "MAC addresses"),
    "USER": ("user name", "user names"), "HOST": ("host name", "host names"),
    "IDENTIFIER": ("login or device name", "logins or device names"),
    "REDACTED": ("whole text (the filter failed on it)", "whole texts (the filter failed on them)"),
    "IP": ("IP address", "IP addresses"), "ID_DOCUMENT": ("passport or licence number", "passport or licence numbers"),
    "BANK_ACCOUNT": ("bank account", "bank accounts"), "NAME": ("name", "names"),
    "HEALTH": ("health term", "health terms"),
}


def replaced_in_words(counts: dict[str, int]) -> str:
    """``{"EMAIL": 1, "SECRET": 2}`` -> ``"3 replaced: 1 e-mail, 2 secrets"``; ``""`` when nothing is."""
    total = sum(counts.values())
    if not total:
        return ""
    words = []
    for kind, n in sorted(counts.items(), key=lambda kv: _KIND_WORDS.get(kv[0], (kv[0].lower(),))[0]):
        one, several = _KIND_WORDS.get(kind, (kind.lower(), kind.lower()))
        words.append(f"{n} {one if n == 1 else several}")
    return f"{total} replaced: {', '.join(words)}"


def dataset_redactions(events: pa.Table, known_identifiers: Iterable[str] = ()) -> tuple[dict[str, int],
                                                                                         dict[str, int]]:
    """What a dataset build of ``events`` would replace, counted by the build's own code (the same
    episodes, actions, previous-line context, default Redactor and options, as ``deskcorder dataset build``):
    ``(typed text: {kind: n}, window titles: {kind: n})``, titles counted once per distinct title.
    Empty counts when the privacy or dataset stage is not installed or fails: the page still shows."""
    redactor = _redactor()
    if redactor is None or events.num_rows == 0:
        return {}, {}
    try:
        from ...dataset import build_redactions  # one session's part of a build, written nowhere

        return build_redactions(events, redactor, known_identifiers)
    except Exception:  # a build bug must never hide the page from its author
        return {}, {}


def focus_changes(events: pa.Table) -> list[dict[str, Any]]:
    """The windows visited in a session, in order, with how long each stayed in front."""
    df = _frame(events, ["seq", "t_wall_ns", "kind", "app_class", "app_process", "window_title"]).sort("seq")
    end = int(df["t_wall_ns"].max()) if df.height else 0
    focus = df.filter(pl.col("kind") == "focus").to_dicts()
    out = []
    for i, f in enumerate(focus):
        until = focus[i + 1]["t_wall_ns"] if i + 1 < len(focus) else end
        out.append({"t_wall_ns": f["t_wall_ns"], "app": f["app_class"] or f["app_process"] or "unknown application",
                    "title": f["window_title"] or "", "seconds": max(0, until - f["t_wall_ns"]) / _NS})
    return out


# -- admin aggregates ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AppActivity:
    app: str
    people: int
    events: int
    keys: int
    clicks: int


def activity_by_app(events: pa.Table, owners: dict[str, str], k: int = K_ANONYMITY
                    ) -> tuple[list[AppActivity], int, int]:
    """Per application from events: distinct people, events, key presses, clicks, through ``k_anonymous``.

    Every event counts for the application in front when it happened (the
    session's latest focus). The admin's page reads the same figures from the
    counts the store keeps at ingest (``EventStore.activity_totals``); this is
    their recount from decrypted events (tests, and the benchmark's reference).
    """
    if events.num_rows == 0:
        return [], 0, 0
    df = (_frame(events, ["session_id", "seq", "kind", "app_class", "app_process", "device_id"])
          .sort(["session_id", "seq"])
          .with_columns(_app_label().forward_fill().over("session_id").fill_null("(before any window)").alias("app"),
                        pl.col("device_id").replace_strict(owners, default=None).alias("person")))
    people = df["person"].drop_nulls().n_unique()
    agg = (df.group_by("app")
           .agg(pl.col("person").drop_nulls().n_unique().alias("people"), pl.len().alias("events"),
                (pl.col("kind") == "key_down").sum().alias("keys"),
                (pl.col("kind") == "button_down").sum().alias("clicks"))
           .sort("events", descending=True))
    return k_anonymous([AppActivity(r["app"], r["people"], r["events"], r["keys"], r["clicks"])
                        for r in agg.iter_rows(named=True)], people, k)


def k_anonymous(apps: Iterable[Any], people: int, k: int = K_ANONYMITY) -> tuple[list[Any], int, int]:
    """(shown, hidden groups, people) of per-application figures (anything with a ``people`` count): the groups
    of at least ``k`` people, in their order; nothing when fewer than ``k`` people contributed at all."""
    apps = list(apps)
    shown = [a for a in apps if a.people >= k] if people >= k else []
    return shown, len(apps) - len(shown), people


# -- dataset cards ------------------------------------------------------------------------------

_CARD_SECTIONS = {
    "provenance": ("policy_version", "policy_versions", "consent_versions", "consents", "date_range", "from", "to",
                   "start", "end", "since", "until", "first_event", "last_event", "n_people", "people",
                   "n_employees", "employees", "n_sessions", "sessions", "n_devices", "out", "out_dir", "output",
                   "path", "dataset_id", "name", "version", "format", "builder_version", "options"),
    "redactions": (),  # every key containing "redact"
    "actions": ("actions", "action_counts", "n_actions", "episodes", "n_episodes", "n_events", "events",
                "by_kind", "by_app", "apps"),
}


def _flatten(details: Any, depth: int = 0) -> Iterable[tuple[str, Any]]:
    if isinstance(details, dict):
        for key, value in details.items():
            yield str(key), value
            if depth < 2 and isinstance(value, dict):
                yield from _flatten(value, depth + 1)


def dataset_card(details: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Sections of a card from whatever keys a ``dataset.build`` entry holds (first occurrence wins)."""
    found: dict[str, dict[str, Any]] = {name: {} for name in _CARD_SECTIONS}
    for key, value in _flatten(details):
        lowered = key.lower()
        if "redact" in lowered:
            found["redactions"].setdefault(key, value)
        elif lowered in _CARD_SECTIONS["provenance"]:
            found["provenance"].setdefault(key, value)
        elif lowered in _CARD_SECTIONS["actions"] or lowered.startswith("action"):
            found["actions"].setdefault(key, value)
    return found
