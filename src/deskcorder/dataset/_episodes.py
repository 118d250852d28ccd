"""Episodes: a session cut where the person's activity changes context.

Work is per session, ordered by seq. The active application of every event
is the one named by the last FOCUS event before it in the same session
(forward fill; the FOCUS event names its own); events before a session's
first FOCUS have no known application (null).

A new episode starts at an event when
    * it is the first event of its session (``session_start``);
    * the event before it is a PAUSE (``pause``; ``out_of_scope`` when the
      agent paused because the window in front is outside the policy or a
      password prompt: the person switched applications, they did not stop),
      or it is a RESUME (``resume``): what happens across a pause is never
      one task;
    * the event before it is a GAP (``gap``): the agent lost input there
      (its queue overflowed, its spool failed), so no action spans it;
    * it is a FOCUS event naming another application (``app_switch``): another
      (app_class, app_process) pair than the current one. A FOCUS that only
      changes the window title in the same application (a tab, a document
      marked modified) does not split;
    * more than ``idle_gap_s`` passed since the previous event of the session
      (``idle_gap``; by ``t_mono_ns``, any event kind counts, moves included).

Episode ids are ``<session_id>-<index:04d>`` with the index counted from 0 in
each session, so rebuilding the same events gives the same ids. Episodes
partition the events: every event is in exactly one episode.

All of this is vectorised with polars; ``prepare`` returns the sorted frame
with per-row context (episode number, row of the governing FOCUS) that the
action reduction and the episode table read from.
"""

from __future__ import annotations

import dataclasses

import polars as pl
import pyarrow as pa

from ..events import EVENT_SCHEMA, EventKind
from ._options import BuildOptions
from ._schema import EPISODE_SCHEMA

__all__ = ["KIND_CODE", "Prepared", "prepare", "episodes_frame"]

KIND_CODE: dict[str, int] = {kind.value: code for code, kind in enumerate(EventKind)}
_FOCUS, _PAUSE, _RESUME = KIND_CODE["focus"], KIND_CODE["pause"], KIND_CODE["resume"]
_GAP = KIND_CODE["gap"]

# Columns the builder reads; vk carries nothing an action needs, reason only why a pause began.
_INPUT = ("session_id", "seq", "t_mono_ns", "t_wall_ns", "kind", "key", "char", "button", "x", "y", "dx", "dy",
          "app_process", "app_class", "window_title", "reason")
# Read where present: the screen size of FOCUS events (agents before it, and synthetic tables, lack it).
_GEOMETRY = ("screen_width", "screen_height")
# PAUSE reasons of the agent's window check (capture/_gate.py): the person left the policy's scope.
_OUT_OF_SCOPE = ("out_of_scope", "password_prompt")


@dataclasses.dataclass(frozen=True)
class Prepared:
    """Events sorted by (session_id, seq), one row each, with the context columns the builder adds:

    ``row`` (position), ``code`` (kind as KIND_CODE), ``new_session``, ``ctx_row`` (row of the FOCUS in
    force, null before the first), ``start_reason`` (set on an episode's first row), ``episode``
    (number across all sessions, from 0) and ``episode_index`` (from 0 in each session).
    """

    frame: pl.DataFrame
    duplicates_dropped: int

    @property
    def n_events(self) -> int:
        return self.frame.height


def prepare(events: pa.Table, options: BuildOptions) -> Prepared:
    missing = [name for name in _INPUT if name not in events.column_names]
    if missing:
        raise ValueError(f"the events table lacks column(s) {', '.join(missing)}; pass events with the "
                         f"EVENT_SCHEMA columns (deskcorder.events), as EventStore.read_events returns them")
    table = events.select(list(_INPUT))
    for name in _GEOMETRY:
        table = table.append_column(name, events.column(name) if name in events.column_names
                                    else pa.nulls(events.num_rows, EVENT_SCHEMA.field(name).type))
    if "device_id" in events.column_names:
        table = table.append_column("device_id", events.column("device_id").cast(pa.string()))
    else:
        table = table.append_column("device_id", pa.nulls(events.num_rows, pa.string()))
    table = table.cast(pa.schema([EVENT_SCHEMA.field(n) for n in (*_INPUT, *_GEOMETRY)]
                                 + [pa.field("device_id", pa.string())]))
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    df, duplicates = _sorted_unique(df)

    df = df.with_columns(code=pl.col("kind").replace_strict(KIND_CODE, default=-1, return_dtype=pl.Int8))
    unknown = df.filter(pl.col("code") < 0)
    if unknown.height:
        first = unknown.row(0, named=True)
        raise ValueError(f"event (session {first['session_id']}, seq {first['seq']}) has unknown kind "
                         f"{first['kind']!r}; expected one of {', '.join(KIND_CODE)}")
    return Prepared(_with_context(df, options), duplicates)


def _sorted_unique(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Sort by (session_id, seq) unless already sorted, and keep the first of repeated (session_id, seq).

    The store keeps an event sent twice under two batch ids twice; its identity is (session_id, seq), so
    the repeat is dropped here (and counted) rather than typed twice.
    """
    session, seq = pl.col("session_id"), pl.col("seq")
    same_session = session == session.shift(1)
    ascending = df.select(((session > session.shift(1)) | (same_session & (seq > seq.shift(1))))
                          .fill_null(True).all()).item()
    if ascending:
        return df, 0
    df = df.sort(["session_id", "seq"], maintain_order=True)
    repeat = (same_session & (seq == seq.shift(1))).fill_null(False)
    kept = df.filter(~repeat)
    return kept, df.height - kept.height


def _with_context(df: pl.DataFrame, options: BuildOptions) -> pl.DataFrame:
    code, row = pl.col("code"), pl.col("row")
    new_session = pl.col("new_session")
    df = df.with_columns(
        row=pl.int_range(pl.len(), dtype=pl.Int64),
        new_session=(pl.col("session_id") != pl.col("session_id").shift(1)).fill_null(True),
        # One string per application identity; "\x1f" joins the parts so ("a", "bc") != ("ab", "c").
        app_key=pl.when(code == _FOCUS).then(pl.concat_str(
            [pl.col("app_class").fill_null(""), pl.col("app_process").fill_null("")], separator="\x1f")),
    )
    df = df.with_columns(session_row=pl.when(new_session).then(row).forward_fill())
    df = df.with_columns(ctx_row=pl.when(code == _FOCUS).then(row).forward_fill())
    in_session = pl.col("ctx_row") >= pl.col("session_row")  # the FOCUS in force is from this session
    df = df.with_columns(ctx_row=pl.when(in_session).then(pl.col("ctx_row")),
                         app_now=pl.when(in_session).then(pl.col("app_key").forward_fill()))
    app_before = pl.when(~new_session).then(pl.col("app_now").shift(1))
    gap_ns = int(options.idle_gap_s * 1e9)
    after_pause = (code.shift(1) == _PAUSE).fill_null(False)
    reason = (pl.when(new_session).then(pl.lit("session_start"))
              .when(after_pause & pl.col("reason").shift(1).is_in(_OUT_OF_SCOPE)).then(pl.lit("out_of_scope"))
              .when(after_pause).then(pl.lit("pause"))
              .when((code.shift(1) == _GAP).fill_null(False)).then(pl.lit("gap"))
              .when(code == _RESUME).then(pl.lit("resume"))
              .when((code == _FOCUS) & app_before.ne_missing(pl.col("app_key"))).then(pl.lit("app_switch"))
              .when((pl.col("t_mono_ns").diff() > gap_ns).fill_null(False)).then(pl.lit("idle_gap")))
    df = df.with_columns(start_reason=reason).drop("reason")
    df = df.with_columns(episode=pl.col("start_reason").is_not_null().cum_sum().cast(pl.Int64) - 1)
    df = df.with_columns(
        episode_index=(pl.col("episode") - pl.when(new_session).then(pl.col("episode")).forward_fill()).cast(pl.Int32))
    return df.drop("app_key", "app_now", "session_row")


def episodes_frame(prepared: Prepared, actions_per_episode: pl.DataFrame) -> pl.DataFrame:
    """One row per episode (EPISODE_SCHEMA columns but person_id and split, plus ``episode``), in order.

    ``actions_per_episode`` has columns ``episode`` and ``n_actions``; episodes absent from it have none.
    """
    df = prepared.frame
    starts = df.filter(pl.col("start_reason").is_not_null())
    end_row = (starts["row"].shift(-1).fill_null(df.height) - 1).alias("end_row")
    ends = df.select("t_mono_ns", "t_wall_ns", "seq")[end_row]
    ctx = starts["ctx_row"]
    app = df.select("app_class", "app_process", "window_title")
    episodes = pl.DataFrame({
        "episode": starts["episode"],
        "episode_id": starts.select(episode_id())["episode_id"],
        "session_id": starts["session_id"],
        "device_id": starts["device_id"],
        "episode_index": starts["episode_index"],
        "start_reason": starts["start_reason"],
        "app_class": app["app_class"].gather(ctx),
        "app_process": app["app_process"].gather(ctx),
        "window_title": app["window_title"].gather(ctx),
        "t_start_mono_ns": starts["t_mono_ns"],
        "t_end_mono_ns": ends["t_mono_ns"],
        "t_start_wall_ns": starts["t_wall_ns"],
        "t_end_wall_ns": ends["t_wall_ns"],
        "event_seq_first": starts["seq"],
        "event_seq_last": ends["seq"],
        "n_events": end_row - starts["row"] + 1,
    })
    episodes = episodes.join(actions_per_episode, on="episode", how="left", maintain_order="left")
    episodes = episodes.with_columns(pl.col("n_actions").fill_null(0).cast(pl.Int64))
    # person_id and split are the builder's privacy step (_build.py): they need the pseudonym key.
    return episodes.select("episode", *(n for n in EPISODE_SCHEMA.names if n not in ("person_id", "split")))


def episode_id() -> pl.Expr:
    """``<session_id>-<episode_index:04d>`` from a frame with those two columns."""
    return pl.format("{}-{}", pl.col("session_id"),
                     pl.col("episode_index").cast(pl.String).str.zfill(4)).alias("episode_id")
