"""The ``pointer`` table: (t, x, y) samples of pointer paths, each tied to the action it ends in.

Three kinds of path (``path_kind``):

* ``approach``: how the pointer came to a press (click, double click, drag):
  the moves recorded before its button_down, from the end of the previous
  action of the session or ``APPROACH_WINDOW_NS`` before the press, whichever
  is later, then the press point itself as the last sample. A press with no
  move before it has a one-sample approach.
* ``drag``: the button_down, the moves while the button was held, the
  button_up (the events in the drag's ``event_seqs``).
* ``scroll``: the scroll events of a scroll action, where each step happened.

``t_ms`` is relative to the path's first sample; ``sample`` counts from 0 in
each path. Moves are stored coalesced at 60 Hz by the agent, so an approach
holds at most ~120 samples. The screen size (``screen_width``,
``screen_height``, from the focus event in force, null where the agent did not
record it) lets a model normalise coordinates. All of it is vectorised
(as-of join of moves onto the next press), per session.
"""

from __future__ import annotations

import polars as pl

from ._episodes import KIND_CODE, Prepared

__all__ = ["APPROACH_WINDOW_NS", "PATH_KINDS", "pointer_frame"]

APPROACH_WINDOW_NS = 2_000_000_000
PATH_KINDS: tuple[str, ...] = ("approach", "drag", "scroll")
_PRESS_KINDS = ("click", "double_click", "right_click", "middle_click", "drag")
_MOVE = KIND_CODE["move"]


def pointer_frame(prepared: Prepared, actions: pl.DataFrame) -> pl.DataFrame:
    """Pointer samples of ``actions`` (reduce_actions' frame, in order) with the action's ``session_id``,
    ``device_id``, ``episode_index`` and ``seq_index`` (the action id is made from them once pseudonymised)."""
    df = prepared.frame
    indexed = actions.select("row", "kind", "session_id", "t_start_mono_ns", "t_end_mono_ns", "event_seqs",
                             "ctx_row").with_row_index("action")
    earlier_end = pl.col("t_end_mono_ns").cum_max().shift(1).over("session_id")
    presses = indexed.with_columns(
        since=pl.max_horizontal(earlier_end.fill_null(0), pl.col("t_start_mono_ns") - APPROACH_WINDOW_NS),
    ).filter(pl.col("kind").is_in(_PRESS_KINDS))
    points = df.select("row", "session_id", "t_mono_ns", "x", "y")
    moves = df.filter(pl.col("code") == _MOVE).select("row", "session_id", "t_mono_ns", "x", "y")
    toward = moves.join_asof(presses.select("row", "session_id", "action", "since", press_t="t_start_mono_ns"),
                             on="row", by="session_id", strategy="forward", check_sortedness=False)
    toward = toward.filter((pl.col("t_mono_ns") >= pl.col("since")) & (pl.col("t_mono_ns") <= pl.col("press_t")))
    press_points = presses.select("action", "row").join(points, on="row", how="left")
    approach = pl.concat([toward.select("action", "row", "t_mono_ns", "x", "y"),
                          press_points.select("action", "row", "t_mono_ns", "x", "y")])
    approach = approach.with_columns(path=pl.lit(0, pl.Int8))

    listed = indexed.filter(pl.col("kind").is_in(("drag", "scroll"))).select(
        "action", "session_id", path=pl.when(pl.col("kind") == "drag").then(1).otherwise(2).cast(pl.Int8),
        seq=pl.col("event_seqs")).explode("seq")
    along = listed.join(df.select("session_id", "seq", "row", "t_mono_ns", "x", "y"), on=("session_id", "seq"),
                        how="inner").select("action", "row", "t_mono_ns", "x", "y", "path")

    samples = pl.concat([approach, along]).sort("action", "path", "row")
    path = ("action", "path")
    samples = samples.with_columns(
        path_kind=pl.col("path").replace_strict(dict(enumerate(PATH_KINDS)), return_dtype=pl.String),
        sample=pl.int_range(pl.len(), dtype=pl.Int32).over(path),
        t_ms=((pl.col("t_mono_ns") - pl.col("t_mono_ns").first().over(path)) / 1e6),
    )
    context = actions.select("session_id", "device_id", "episode_index", "seq_index", "ctx_row")
    screen = [c for c in ("screen_width", "screen_height") if c in df.columns]
    joined = pl.concat([context[samples["action"]], samples.select("path_kind", "sample", "t_ms", "x", "y")],
                       how="horizontal")
    ctx = joined["ctx_row"]
    has = ctx.is_not_null()
    return joined.with_columns(
        **{name: (pl.when(has).then(df[name].gather(ctx.fill_null(0))) if name in screen else pl.lit(None))
           .cast(pl.Int32) for name in ("screen_width", "screen_height")}).drop("ctx_row")
