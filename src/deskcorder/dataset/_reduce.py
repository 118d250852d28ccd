"""Raw events to actions: drives the keyboard and pointer reducers over the prepared events.

One pass over the events in (session_id, seq) order. The reducers
(``_keyboard.py``, ``_pointer.py``) hold the rules; this module decides when
they must end what they have open:

* another action starting ends merges on the other device: a key that makes
  an action emits a waiting click or an open scroll, a press or a scroll ends
  the typed run;
* an episode boundary from an app switch or an idle gap ends typed runs,
  waiting clicks and scrolls (a press still held goes on: clicking another
  window is what switches applications);
* a PAUSE, a GAP (events lost there) and a session's end close everything,
  presses included.

The reducers emit actions when they close, which is not always in the order
they started (a waiting click is emitted when the next action begins), so
actions are sorted by their first event afterwards. The loop is plain Python
over column lists: the rules are a state machine that does not vectorise. It
skips the moves (most of a stream, and they change no state): who a move is
made under is noted when it changes, and the moves are matched to it by an
as-of join after the loop. At ~1 µs per visited event it is still the largest
single stage of a build (see benchmarks/dataset_build.py).
"""

from __future__ import annotations

import itertools
from typing import Any

import polars as pl
import pyarrow as pa

from ._episodes import KIND_CODE, Prepared, episode_id
from ._keyboard import KeyboardReducer
from ._options import BuildOptions
from ._pointer import PointerReducer, _Press

__all__ = ["ActionSink", "reduce_actions"]

_KEY_DOWN, _KEY_UP = KIND_CODE["key_down"], KIND_CODE["key_up"]
_MOVE, _DOWN, _UP = KIND_CODE["move"], KIND_CODE["button_down"], KIND_CODE["button_up"]
_SCROLL, _PAUSE, _GAP = KIND_CODE["scroll"], KIND_CODE["pause"], KIND_CODE["gap"]
_INTERRUPTING = ("app_switch", "idle_gap")

# The columns the sink collects, one list each; the rest are joined from the events afterwards.
_COLLECTED = ("row", "kind", "text", "keys", "button", "x", "y", "x2", "y2", "dx", "dy",
              "t_start_mono_ns", "t_end_mono_ns", "event_seqs")


class ActionSink:
    """Where the reducers put finished actions: column lists. A press's ``event_seqs`` wait for the moves
    made while its button was held, which are found once the loop is over (``moves``)."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {name: [] for name in _COLLECTED}
        # action number -> (row, seq, seq of the button_up or None) of its press or presses
        self.presses: dict[int, list[tuple[int, int, int | None]]] = {}

    def _add(self, row: int, kind: str, t0: int, t1: int, seqs: list[int], *, text: str | None = None,
             keys: str | None = None, button: str | None = None, x: int | None = None, y: int | None = None,
             x2: int | None = None, y2: int | None = None, dx: int | None = None, dy: int | None = None) -> None:
        c = self.cols
        c["row"].append(row)
        c["kind"].append(kind)
        c["text"].append(text)
        c["keys"].append(keys or None)
        c["button"].append(button)
        c["x"].append(x)
        c["y"].append(y)
        c["x2"].append(x2)
        c["y2"].append(y2)
        c["dx"].append(dx)
        c["dy"].append(dy)
        c["t_start_mono_ns"].append(t0)
        c["t_end_mono_ns"].append(t1)
        c["event_seqs"].append(seqs)

    def key(self, kind: str, row: int, seq: int, t: int, keys: str) -> None:
        self._add(row, kind, t, t, [seq], keys=keys)

    def type(self, row: int, seqs: list[int], t0: int, t1: int, text: str) -> None:
        self._add(row, "type", t0, t1, seqs, text=text)

    def press(self, kind: str, press: _Press, x2: int | None, y2: int | None, second: _Press | None) -> None:
        parts = [press] if second is None else [press, second]
        self.presses[len(self.cols["row"])] = [(p.row, p.seq, p.up_seq if p.up_row is not None else None)
                                               for p in parts]
        last = parts[-1]
        t_end = last.up_t if last.up_row is not None else last.t
        self._add(press.row, kind, press.t, t_end, [], keys=press.keys, button=press.button,
                  x=press.x, y=press.y, x2=x2, y2=y2)

    def scroll(self, row: int, seqs: list[int], t0: int, t1: int, x: int, y: int, dx: int, dy: int,
               keys: str) -> None:
        self._add(row, "scroll", t0, t1, list(seqs), keys=keys, x=x, y=y, dx=dx, dy=dy)

    def add_moves(self, moves: dict[int, list[int]]) -> None:
        """The presses' ``event_seqs``: the down, the moves while it was held (``moves``: row of a button_down
        -> their seqs) and the up; a press never released is its down alone (the moves went nowhere)."""
        listed = self.cols["event_seqs"]
        for action, parts in self.presses.items():
            seqs: list[int] = []
            for row, seq, up_seq in parts:
                seqs += [seq] if up_seq is None else [seq, *moves.get(row, ()), up_seq]
            listed[action] = sorted(seqs)


def reduce_actions(prepared: Prepared, options: BuildOptions, held_mods: list[str] | None = None) -> pl.DataFrame:
    """Actions in order of their first event, with ``row`` (their first event's row), ``episode`` and
    ``seq_index``; the context columns (ids, app, window, wall time) come from the events. ``held_mods``
    gets the modifiers held at each key_down, in order (for the keystrokes table: ``key_presses``)."""
    sink = ActionSink()
    mods_at_down = held_mods if held_mods is not None else []
    kb = KeyboardReducer(sink, options.type_merge_s)
    ptr = PointerReducer(sink, drag_threshold_px=options.drag_threshold_px,
                         double_click_s=options.double_click_s, double_click_px=options.double_click_px,
                         scroll_merge_s=options.scroll_merge_s)
    df = prepared.frame
    held: dict[str, int] = {}  # button -> row of its open button_down, in press order
    # A move only matters to the press it is made under (the earliest still held), so the loop visits the
    # other events and notes who that is whenever it changes; the moves are matched to it afterwards.
    owner_rows: list[int] = []
    owners: list[int] = []
    visited = df.filter((pl.col("code") != _MOVE) | pl.col("start_reason").is_not_null())
    columns = [visited[name].to_list() for name in
               ("row", "code", "seq", "t_mono_ns", "key", "char", "button", "x", "y", "dx", "dy", "start_reason")]
    for row, code, seq, t, key, char, button, x, y, dx, dy, reason in zip(*columns):
        if reason is not None:
            if reason == "session_start":
                if row:
                    kb.reset()
                    ptr.close()
                    if held:
                        held.clear()
                        owner_rows.append(row)
                        owners.append(-1)
            elif reason in _INTERRUPTING:
                kb.interrupt()
                ptr.interrupt()
        if code == _KEY_DOWN:
            mods_at_down.append(kb.mods)
            if kb.key_down(row, seq, t, key, char):
                ptr.interrupt()
        elif code == _KEY_UP:
            kb.key_up(key)
        elif code == _DOWN:
            kb.interrupt()
            ptr.button_down(row, seq, t, button, x, y, kb.mods)
            held.pop(button, None)  # a press whose release was lost gives way to this one
            held[button] = row
            owner_rows.append(row)
            owners.append(next(iter(held.values())))
        elif code == _UP:
            if held.pop(button, None) is not None:
                owner_rows.append(row)
                owners.append(next(iter(held.values())) if held else -1)
            ptr.button_up(row, seq, t, button, x, y)
        elif code == _SCROLL:
            kb.interrupt()
            ptr.scroll(row, seq, t, x, y, dx, dy, kb.mods)
        elif code == _PAUSE or code == _GAP:
            kb.reset()
            ptr.close()
            if held:
                held.clear()
                owner_rows.append(row)
                owners.append(-1)
    kb.reset()
    ptr.close()
    sink.add_moves(_moves_under(df, owner_rows, owners))

    cols = sink.cols
    actions = pl.DataFrame({
        "row": pl.Series(cols["row"], dtype=pl.Int64),
        "kind": pl.Series(cols["kind"], dtype=pl.String),
        "text": pl.Series(cols["text"], dtype=pl.String),
        "keys": pl.Series(cols["keys"], dtype=pl.String),
        "button": pl.Series(cols["button"], dtype=pl.String),
        **{name: pl.Series(cols[name], dtype=pl.Int32) for name in ("x", "y", "x2", "y2", "dx", "dy")},
        "t_start_mono_ns": pl.Series(cols["t_start_mono_ns"], dtype=pl.Int64),
        "t_end_mono_ns": pl.Series(cols["t_end_mono_ns"], dtype=pl.Int64),
        "event_seqs": _lists(cols["event_seqs"]),
    })
    context = df.select("row", "episode", "episode_index", "session_id", "device_id", "t_wall_ns", "ctx_row")
    actions = actions.sort("row", maintain_order=True).join(context, on="row", how="left", maintain_order="left")
    app = df.select("app_class", "app_process", "window_title")
    has_ctx = actions["ctx_row"].is_not_null()
    ctx = actions["ctx_row"].fill_null(0)
    actions = actions.with_columns(
        seq_index=pl.int_range(pl.len(), dtype=pl.Int32).over("episode"),
        app_class=pl.when(has_ctx).then(app["app_class"].gather(ctx)),
        app_process=pl.when(has_ctx).then(app["app_process"].gather(ctx)),
        window_title=pl.when(has_ctx).then(app["window_title"].gather(ctx)),
        event_seq_first=pl.col("event_seqs").list.first(),
        event_seq_last=pl.col("event_seqs").list.last(),
        t_start_wall_ns=pl.col("t_wall_ns"),
    )
    return actions.with_columns(episode_id()).with_columns(
        action_id=pl.format("{}-{}", pl.col("episode_id"), pl.col("seq_index").cast(pl.String).str.zfill(5)))


def _moves_under(df: pl.DataFrame, owner_rows: list[int], owners: list[int]) -> dict[int, list[int]]:
    """Row of a button_down -> seqs of the moves made under it: each move goes to the owner in force at
    its row (``owners`` from ``owner_rows`` on, -1 for none)."""
    if not owner_rows:
        return {}
    changes = pl.DataFrame({"row": pl.Series(owner_rows, dtype=pl.Int64), "owner": pl.Series(owners, dtype=pl.Int64)})
    moves = df.filter(pl.col("code") == _MOVE).select("row", "seq") \
        .join_asof(changes, on="row", strategy="backward", check_sortedness=False).filter(pl.col("owner") >= 0)
    grouped = moves.group_by("owner", maintain_order=True).agg("seq")
    return dict(zip(grouped["owner"].to_list(), grouped["seq"].to_list()))


def _lists(lists: list[list[int]]) -> pl.Series:
    """A List(Int64) column from Python lists, built from one flat list and offsets (fast)."""
    offsets = [0]
    offsets += itertools.accumulate(map(len, lists))
    flat = list(itertools.chain.from_iterable(lists))
    array = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(flat, pa.int64()))
    return pl.Series("event_seqs", array, dtype=pl.List(pl.Int64))
