"""The ``observations`` table: each action joined to what the person saw when they did it.

An observation names its action by ``(session_id, action_seq)``: the seq of
the event that started it (a button press, the first key of a typing run, the
key of a hotkey, the first scroll step). It is joined to the action whose
``event_seqs`` hold that seq; one an action does not hold (its event was
dropped as a duplicate, or made no action) is counted and left out, and an
action with two (the two presses of a double click) keeps the first.

Per row: the action's position normalised to the screen and to the window
(0..1; null for keyboard actions), the geometry it was normalised with, the
UI element under a click (role, states, ancestors' roles, its box normalised
to the window, and its name through the Redactor), and the frame.

Only masked frames enter a dataset. Every frame goes through
``privacy.FrameRedactor`` (OCR, the Redactor over its lines, flagged words
blacked out), and where the element's name held a secret, its box is blacked
out too. A frame the OCR could not check is left out (the row stays, its
``frame`` null) and counted. Frames are written as PNG files beside the
tables, ``frames/<episode_id>/<seq_index:05d>.png``, named in the row.

This runs per group of whole sessions in ``_build._compute`` (so on the
workers of a Dask build, where the OCR's cost is spread), keyed by the raw
session id; ``_build._finish`` names the rows with their action ids once the
ids are pseudonymised.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import polars as pl

from ..observations import Box, Frame, Observation

if TYPE_CHECKING:
    from ..privacy import FrameRedaction, FrameRedactor

__all__ = ["ObservedPart", "frame_path", "observation_table", "observe_actions"]

_POINTER_KINDS = ("click", "double_click", "right_click", "middle_click", "drag", "scroll")
# Columns of the per-part frame, in this order; "_png" (the masked frame) is written as a file, not a column.
_PART_COLUMNS: dict[str, Any] = {
    "session_id": pl.String, "episode_index": pl.Int32, "seq_index": pl.Int32, "trigger": pl.String,
    "x_screen": pl.Float64, "y_screen": pl.Float64, "x_window": pl.Float64, "y_window": pl.Float64,
    "screen_width": pl.Int32, "screen_height": pl.Int32, "window_x": pl.Float64, "window_y": pl.Float64,
    "window_width": pl.Int32, "window_height": pl.Int32, "dpi": pl.Float64,
    "frame_width": pl.Int32, "frame_height": pl.Int32, "masked_regions": pl.Int32, "frame_left_out": pl.String,
    "element_role": pl.String, "element_name": pl.String, "element_states": pl.List(pl.String),
    "element_ancestors": pl.List(pl.String), "element_protected": pl.Boolean,
    "element_x": pl.Float64, "element_y": pl.Float64, "element_width": pl.Float64, "element_height": pl.Float64,
    "_png": pl.Binary,
}


def frame_path(episode_id: str, seq_index: int) -> str:
    """Where an action's frame lies in a dataset folder."""
    return f"frames/{episode_id}/{seq_index:05d}.png"


@dataclasses.dataclass(frozen=True)
class ObservedPart:
    """The observations of one group of sessions, joined and masked (see the module)."""

    rows: pl.DataFrame  # _PART_COLUMNS
    unmatched: int  # observations no action of theirs holds
    redactions: dict[str, int]  # element-name spans by kind
    frame_redactions: dict[str, int]  # spans flagged in frames by kind


def empty_rows() -> pl.DataFrame:
    return pl.DataFrame(schema=_PART_COLUMNS)


def _ratio(value: float | None, origin: float, size: int) -> float | None:
    if value is None or size <= 0:
        return None
    return (value - origin) / size


def _to_frame(box: Box, obs: Observation) -> Box | None:
    """An element's screen box in the frame's pixels (the frame is the window's client area, downscaled)."""
    frame = obs.frame
    if frame is None or obs.window_width <= 0 or obs.window_height <= 0:
        return None
    sx, sy = frame.width / obs.window_width, frame.height / obs.window_height
    x0, y0 = int((box.x - obs.window_x) * sx), int((box.y - obs.window_y) * sy)
    x1 = int((box.x + box.width - obs.window_x) * sx + 0.999)
    y1 = int((box.y + box.height - obs.window_y) * sy + 0.999)
    return Box(x0, y0, x1 - x0, y1 - y0)


def observe_actions(actions: pl.DataFrame, observations: Sequence[Observation], frame_redactor: FrameRedactor,
                    known: Iterable[str] = ()) -> ObservedPart:
    """Join ``observations`` to ``actions`` (reduce_actions' frame: raw session ids, ``event_seqs``), normalise
    their coordinates, redact element names and mask frames."""
    if not observations or actions.height == 0:
        return ObservedPart(empty_rows(), len(observations), {}, {})
    known = tuple(known)
    seqs = actions.select("session_id", seq="event_seqs").with_row_index("_action").explode("seq")
    owner = {(s, q): int(a) for a, s, q in seqs.select("_action", "session_id", "seq").iter_rows()}
    columns = actions.select("session_id", "episode_index", "seq_index", "kind", "x", "y", "app_class",
                             "window_title").to_dict(as_series=False)
    rows: dict[str, list[Any]] = {name: [] for name in _PART_COLUMNS}
    names: Counter[str] = Counter()
    in_frames: Counter[str] = Counter()
    taken: set[int] = set()
    unmatched = 0
    done: list[dict[str, Any]] = []
    jobs: list[tuple[dict[str, Any], Frame, str | None, str | None, list[Box]]] = []
    for obs in sorted(observations, key=lambda o: (o.session_id, o.action_seq)):
        action = owner.get((obs.session_id, obs.action_seq))
        if action is None:
            unmatched += 1
            continue
        if action in taken:
            continue  # the second press of a double click: the first one's frame is what was seen
        taken.add(action)
        pointer = columns["kind"][action] in _POINTER_KINDS
        x, y = (columns["x"][action], columns["y"][action]) if pointer else (None, None)
        out = {
            "session_id": obs.session_id, "episode_index": columns["episode_index"][action],
            "seq_index": columns["seq_index"][action], "trigger": obs.trigger,
            "x_screen": _ratio(x, 0, obs.screen_width), "y_screen": _ratio(y, 0, obs.screen_height),
            "x_window": _ratio(x, obs.window_x, obs.window_width), "y_window": _ratio(y, obs.window_y,
                                                                                      obs.window_height),
            "screen_width": obs.screen_width, "screen_height": obs.screen_height,
            "window_x": _ratio(obs.window_x, 0, obs.screen_width), "window_y": _ratio(obs.window_y, 0,
                                                                                      obs.screen_height),
            "window_width": obs.window_width, "window_height": obs.window_height, "dpi": obs.dpi,
        }
        extra: list[Box] = []
        element = obs.element
        if element is not None:
            name, counts = (None, {}) if element.protected else frame_redactor.redact_name(
                element.name, known_identifiers=known)
            names.update(counts)
            if counts or element.protected:
                box = _to_frame(element.box, obs)
                if box is not None:
                    extra.append(box)
            out.update(element_role=element.role, element_name=name, element_states=list(element.states),
                       element_ancestors=list(element.ancestors), element_protected=element.protected,
                       element_x=_ratio(element.box.x, obs.window_x, obs.window_width),
                       element_y=_ratio(element.box.y, obs.window_y, obs.window_height),
                       element_width=_ratio(element.box.width, 0, obs.window_width),
                       element_height=_ratio(element.box.height, 0, obs.window_height))
        if obs.frame is not None:
            jobs.append((out, obs.frame, columns["app_class"][action], columns["window_title"][action], extra))
        done.append(out)

    def check(job: tuple) -> FrameRedaction:
        _, frame, app_class, title, extra = job
        return frame_redactor.redact_frame(frame.data, app_class=app_class, window_title=title,
                                           known_identifiers=known, extra_boxes=extra)

    # One Tesseract process per frame: threads wait on them in parallel; map keeps the order (and the bytes).
    workers = max(1, min(len(jobs), getattr(frame_redactor, "workers", 1)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for (out, frame, *_), checked in zip(jobs, pool.map(check, jobs)):
            if checked.image is None:
                out["frame_left_out"] = checked.reason
            else:
                in_frames.update(checked.counts)
                out.update(_png=checked.image, frame_width=checked.width, frame_height=checked.height,
                           masked_regions=len(frame.masked) + len(checked.masked))
    for out in done:
        for name in _PART_COLUMNS:
            rows[name].append(out.get(name))
    frame = pl.DataFrame(rows, schema=_PART_COLUMNS)
    return ObservedPart(frame, unmatched, dict(names), dict(in_frames))


def observation_table(parts: Sequence[ObservedPart], keys: pl.DataFrame, actions: pl.DataFrame
                      ) -> tuple[pl.DataFrame, dict[str, bytes], dict[str, Any]]:
    """The table as written (OBSERVATION_SCHEMA columns), the frame files by path, and the card's figures.

    ``keys``: raw ``session_id``, ``episode_index``, ``seq_index`` with the ``action_id`` and ``episode_id``
    the build gave each action; ``actions``: the actions table as written (its ``person_id`` and ``split``,
    which a release may have changed, are the row's).
    """
    rows = pl.concat([p.rows for p in parts], how="vertical", rechunk=True) if parts else empty_rows()
    rows = rows.join(keys, on=("session_id", "episode_index", "seq_index"), how="inner", maintain_order="left")
    rows = rows.join(actions.select("action_id", "person_id", "split"), on="action_id", how="inner",
                     maintain_order="left")
    frames: dict[str, bytes] = {}
    paths: list[str | None] = []
    for episode, seq_index, png in zip(rows["episode_id"].to_list(), rows["seq_index"].to_list(),
                                       rows["_png"].to_list()):
        if png is None:
            paths.append(None)
            continue
        path = frame_path(episode, seq_index)
        frames[path] = png
        paths.append(path)
    rows = rows.with_columns(frame=pl.Series(paths, dtype=pl.String))
    left_out = Counter(r for r in rows["frame_left_out"].to_list() if r is not None)
    in_frames: Counter[str] = Counter()
    for p in parts:
        in_frames.update(p.frame_redactions)
    summary = {
        "rows": rows.height,
        "frames": len(frames),
        "elements": rows["element_role"].is_not_null().sum(),
        "masked_regions": int(rows.filter(pl.col("frame").is_not_null())["masked_regions"].sum() or 0),
        "frames_left_out": dict(sorted(left_out.items())),
        "unmatched": sum(p.unmatched for p in parts),
        "frame_redactions": dict(sorted(in_frames.items())),
    }
    return rows.drop("_png", "session_id", "episode_index", "frame_left_out"), frames, summary
