"""The ``keystrokes`` table: one row per key press inside a ``type``, ``hotkey`` or ``key`` action.

``key_presses`` finds every press of a build from the prepared events, with
polars expressions: when it went down, when it came up, the modifiers held
(which the action reduction, ``_reduce.py``, notes at each key_down).
``keystrokes_frame`` then lays out the presses of each keyboard action in order.

Which presses belong to an action: the key_downs listed in its ``event_seqs``
(characters, backspaces, the key of a hotkey), and before each of them the
modifier presses (Shift, Ctrl...) that went down since the previous key and
were still held when it went down, so the Shift of "H" and the Ctrl of
ctrl+s are rows of their action. A modifier pressed and released with no key
in between belongs to nothing.

Which key went up: a key_up releases the held press of the same key (case
folded: xdotool releases Shift before "H", so its key_up says "h"); one that
names no held key ("1" for a "!" whose Shift came up first) releases the
oldest held non-modifier press. A press with no release (lost across a pause,
auto-repeat pressed it again, or the session ended) has a null hold.

Timings, in ms, within the action: ``hold_ms`` up minus down, ``dd_ms``
down minus the previous press's down, ``ud_ms`` down minus the previous
press's up (negative when they overlap), ``rollover`` this press was still
held when the next one went down. Only durations: no clock value is written.

Redaction: a typing run's text is its printable presses, a backspace removing
the last character still there. Replaying that maps each surviving character
of the text to the press that typed it. A press whose character lies in a
redacted span (``_typed.py``) keeps its timing and loses its identity: key
null, class ``redacted``, and so do the modifiers pressed for it. A character
typed and deleted was never seen by the Redactor, so it is masked whenever
anything of its run was redacted or nothing of it is left (when unsure, mask).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import polars as pl

from ._episodes import KIND_CODE
from ._keyboard import LOCK_KEYS, MODIFIER_KEYS, key_name

__all__ = ["KEY_CLASSES", "KeyTimer", "key_presses", "keystrokes_frame"]

KEY_CLASSES: tuple[str, ...] = ("letter", "digit", "space", "punctuation", "modifier", "backspace", "enter",
                                "navigation", "function", "other", "redacted")
_NAVIGATION = frozenset({"up", "down", "left", "right", "home", "end", "page_up", "page_down", "tab"})
_ENTER = frozenset({"enter", "return", "kp_enter"})
_FUNCTION_RE = re.compile(r"f\d{1,2}")
KEYBOARD_KINDS = ("type", "hotkey", "key")


def key_class(key: str, char: str | None) -> str:
    """The class of a press: what a typing model conditions on without knowing the key."""
    if key in MODIFIER_KEYS:
        return "modifier"
    name = key_name(key, char)
    if name == "backspace":
        return "backspace"
    if name in _ENTER:
        return "enter"
    if name == "space":
        return "space"
    if name in _NAVIGATION:
        return "navigation"
    if _FUNCTION_RE.fullmatch(name):
        return "function"
    if char is not None and len(char) == 1 and char.isprintable():
        return "letter" if char.isalpha() else "digit" if char.isdigit() else "punctuation"
    return "other"


_KEY_DOWN, _KEY_UP = KIND_CODE["key_down"], KIND_CODE["key_up"]
_CLEARING = (KIND_CODE["button_down"], KIND_CODE["scroll"])  # a press or scroll: held modifiers were for it
_RESETTING = (KIND_CODE["pause"], KIND_CODE["gap"])  # the key_ups of what is held are lost there


class KeyTimer:
    """The press rules one event at a time, for the stretches ``key_presses`` does not vectorise: a
    key_up naming no held key, or a key name that is also a modifier's. One instance per stretch."""

    __slots__ = ("presses", "ups", "with_mods", "_modifier", "_held", "_pending")

    def __init__(self) -> None:
        self.presses: list[int] = []  # row of each press's key_down
        self.ups: list[int | None] = []  # t up of each press (None: never seen)
        self.with_mods: dict[int, list[int]] = {}  # press -> the modifier presses that came with it
        self._modifier: list[bool] = []
        self._held: dict[str, int] = {}  # folded key -> press still down
        self._pending: list[int] = []  # modifier presses not yet followed by a key

    def down(self, row: int, key: str) -> None:
        modifier = MODIFIER_KEYS.get(key)
        if modifier is not None:
            name = modifier[0]
            if name in self._held:
                return  # auto-repeat of a held modifier: still the same press
        elif key in LOCK_KEYS:
            return
        else:
            name = key.lower()
        i = len(self.ups)
        self.presses.append(row)
        self.ups.append(None)
        self._modifier.append(modifier is not None)
        self._held[name] = i  # a key pressed again while held (auto-repeat) leaves the earlier press unreleased
        if modifier is not None:
            self._pending.append(i)
        elif self._pending:
            self.with_mods[i] = self._pending
            self._pending = []

    def up(self, t: int, key: str) -> None:
        modifier = MODIFIER_KEYS.get(key)
        if modifier is None and key in LOCK_KEYS:
            return
        i = self._held.pop(modifier[0] if modifier is not None else key.lower(), None)
        if i is None:
            if modifier is not None:
                return
            held = [j for j in self._held.values() if not self._modifier[j]]
            if not held:
                return
            i = min(held)
            self._held = {k: j for k, j in self._held.items() if j != i}
        self.ups[i] = t
        if self._pending and i in self._pending:
            self._pending.remove(i)  # released before any key: it modified nothing

    def pointer(self) -> None:
        """A press or scroll: modifiers held for it (ctrl+click) belong to no keyboard action."""
        self._pending = []


def key_presses(frame: pl.DataFrame, held_mods: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every key press of the prepared events ``frame``, by the rules of the module docstring.

    ``held_mods``: the keyboard reducer's modifiers at each key_down, in row order (``reduce_actions``).
    Returns the presses (``press``, the row of its key_down, with ``seq``, ``down``, ``up``, ``key``,
    ``char``, ``mods``) and the modifier presses that came with a key press (``press``, ``modifier``:
    rows, in order).

    Vectorised: the state lives in stretches between resets (a session's start, a pause, a gap) and,
    within one, per key name, so a key_up releases the latest press of its name when the previous event
    of that name was a key_down. The one rule that couples names (a key_up naming no held key releases
    the oldest held key) and a name shared by a modifier and another key go to ``KeyTimer``, replaying
    only the stretches they occur in.
    """
    code = pl.col("code")
    events = frame.select("row", "seq", "t_mono_ns", "key", "char", "code",
                          stretch=(pl.col("new_session") | code.is_in(_RESETTING)).cum_sum())
    is_down = pl.col("code") == _KEY_DOWN
    keyed = events.filter(code.is_in((_KEY_DOWN, _KEY_UP)))
    down_no = keyed.select(is_down.cast(pl.Int64).cum_sum() - 1).to_series()
    mods = pl.Series(held_mods, dtype=pl.String)
    keyed = keyed.with_columns(mods=pl.when(is_down).then(mods.gather(down_no.clip(lower_bound=0)) if len(mods)
                                                          else pl.lit(None, pl.String)))
    keyed = keyed.filter(~pl.col("key").is_in(list(LOCK_KEYS)))
    distinct = keyed["key"].unique().to_list()
    names = {k: MODIFIER_KEYS[k][0] if k in MODIFIER_KEYS else k.lower() for k in distinct}
    number = {name: i for i, name in enumerate(sorted(set(names.values())))}  # ints sort faster than strings
    shared = ({names[k] for k in distinct if k in MODIFIER_KEYS}
              & {names[k] for k in distinct if k not in MODIFIER_KEYS})  # "SHIFT" typed as a key, say
    keyed = keyed.with_columns(
        # (an empty mapping, with no key event at all, would leave the column a string)
        name=pl.col("key").replace_strict({k: number[n] for k, n in names.items()}, return_dtype=pl.Int64)
        if number else pl.lit(None, pl.Int64),
        modifier=pl.col("key").is_in(list(MODIFIER_KEYS)),
        mixed=pl.col("key").is_in([k for k in distinct if names[k] in shared]))
    # Each (stretch, name) as one number; a stable sort on it keeps each one's events in row order.
    keyed = keyed.with_columns(_group=pl.col("stretch").cast(pl.Int64) * len(number) + pl.col("name")) \
        .sort("_group", maintain_order=True)
    same = (pl.col("_group") == pl.col("_group").shift(1)).fill_null(False)
    held = same & is_down.shift(1).fill_null(False)  # its name held just before it
    keyed = keyed.with_columns(held=held)
    keyed = keyed.with_columns(press=is_down & ~(pl.col("modifier") & pl.col("held")))
    keyed = keyed.with_columns(released=pl.when(pl.col("press")).then(pl.col("row")).forward_fill())
    unsure = keyed.filter(pl.col("mixed") | (~is_down & ~pl.col("held") & ~pl.col("modifier")))["stretch"].unique()
    clean = keyed.filter(~pl.col("stretch").is_in(unsure.implode()))
    ups = clean.filter(~is_down & pl.col("held")).select(press="released", up="t_mono_ns", up_row="row")
    presses = clean.filter("press").select(press="row", stretch="stretch", modifier="modifier") \
        .join(ups, on="press", how="left")
    # A modifier press goes with the next key press when nothing that clears the waiting modifiers (a
    # reset, a press or scroll, another key press) comes between and it was not released before it: the
    # clearing events are numbered in row order, and a modifier takes the key press numbered next.
    key_rows = presses.filter(~pl.col("modifier"))["press"]
    clearing = events.select(
        "row", n=((pl.col("stretch") != pl.col("stretch").shift(1)).fill_null(True).cast(pl.Int64)
                  + (code.is_in(_CLEARING) | pl.col("row").is_in(key_rows.implode())).cast(pl.Int64)),
        first=(pl.col("stretch") != pl.col("stretch").shift(1)).fill_null(True))
    clearing = clearing.with_columns(n=pl.col("n").cum_sum())
    count = clearing["n"]
    key_ends = pl.DataFrame({"press": key_rows, "n": count.gather(key_rows)}) \
        .filter(~clearing["first"].gather(key_rows))
    mods = presses.filter("modifier").select(modifier="press", up_row="up_row",
                                            n=count.gather(presses.filter("modifier")["press"]) + 1)
    pairs = mods.join(key_ends, on="n", how="inner") \
        .filter(pl.col("up_row").is_null() | (pl.col("up_row") > pl.col("press"))) \
        .select(pl.col("press").cast(pl.Int64), pl.col("modifier").cast(pl.Int64))
    times = presses.select(pl.col("press").cast(pl.Int64), pl.col("up").cast(pl.Int64))
    if unsure.len():
        times, pairs = _replay(events.filter(pl.col("stretch").is_in(unsure.implode())), times, pairs)
    presses = times.join(keyed.select(press="row", seq="seq", down="t_mono_ns", key="key", char="char", mods="mods"),
                         on="press", how="left").sort("press")
    return presses.select("press", "seq", "down", "up", "key", "char", "mods"), pairs.sort("press", "modifier")


def _replay(events: pl.DataFrame, times: pl.DataFrame, pairs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``KeyTimer`` over ``events`` (whole stretches), its presses added to ``times`` and ``pairs``."""
    rows, ups, owners, modifiers = [], [], [], []
    events = events.filter(pl.col("code").is_in((_KEY_DOWN, _KEY_UP, *_CLEARING)))
    for _, stretch in events.group_by("stretch", maintain_order=True):
        timer = KeyTimer()
        for row, t, key, c in stretch.select("row", "t_mono_ns", "key", "code").iter_rows():
            if c == _KEY_DOWN:
                timer.down(row, key)
            elif c == _KEY_UP:
                timer.up(t, key)
            else:
                timer.pointer()
        rows += timer.presses
        ups += timer.ups
        for i, mods in timer.with_mods.items():
            owners += [timer.presses[i]] * len(mods)
            modifiers += [timer.presses[j] for j in mods]
    times = pl.concat([times, pl.DataFrame({"press": rows, "up": ups}, schema=times.schema)])
    pairs = pl.concat([pairs, pl.DataFrame({"press": owners, "modifier": modifiers}, schema=pairs.schema)])
    return times, pairs


def keystrokes_frame(actions: pl.DataFrame, frame: pl.DataFrame, held_mods: list[str],
                     spans: list[list[tuple[int, int]] | None]) -> pl.DataFrame:
    """One row per press of each keyboard action (``actions`` in order, with ``kind``, ``event_seqs``,
    ``row``; ``frame``, ``held_mods``: the prepared events and the modifiers held at each key_down, for
    ``key_presses``; ``spans``: what ``redact_runs`` found in each action), carrying the action's
    ``session_id``, ``device_id``, ``episode_index`` and ``seq_index`` (the action id is made from them
    once pseudonymised)."""
    presses, with_mods = key_presses(frame, held_mods)
    session_of_row = frame["session_id"]
    # Which press each listed seq is: a join on (session, seq), sessions numbered by their first row.
    session_no = session_of_row.ne(session_of_row.shift(1)).fill_null(True).cum_sum()
    by_seq = presses.select("press", "seq", s=session_no.gather(presses["press"]))
    keyboard = actions.with_row_index("action").filter(pl.col("kind").is_in(KEYBOARD_KINDS))
    listed = keyboard.select(pl.col("action").cast(pl.Int64), "kind", s=session_no.gather(keyboard["row"]),
                             seq=pl.col("event_seqs")) \
        .explode("seq").join(by_seq, on=("s", "seq"), how="inner", maintain_order="left") \
        .select("action", "kind", "press", k=pl.int_range(pl.len(), dtype=pl.Int64))
    # Each listed press, preceded by the modifier presses that came with it.
    own = listed.select("action", "kind", "k", sub=pl.lit(1, pl.Int8), press="press", owner="press")
    extra = listed.join(with_mods, on="press", how="inner").select(
        "action", "kind", "k", sub=pl.lit(0, pl.Int8), press="modifier", owner="press")
    laid = pl.concat([own, extra]).sort("k", "sub", "press")
    laid = laid.join(presses.select("press", "down", "up", "key", "char", "mods"), on="press", how="left",
                     maintain_order="left")
    typed = pl.col("kind") == "type"
    laid = laid.with_columns(hidden=pl.col("owner").is_in(pl.Series(_masked_presses(listed, presses, spans),
                                                                    dtype=pl.Int64).implode()),
                             typed=typed)
    # Class and name per distinct (key, char, typed, hidden): a handful of Python calls, not one per row.
    combos = laid.select("key", "char", "typed", "hidden").unique()
    labels = [("redacted", None) if hidden else _class_and_name(k, c, typed)
              for k, c, typed, hidden in combos.iter_rows()]
    combos = combos.with_columns(key_class=pl.Series([c for c, _ in labels], dtype=pl.String),
                                 label=pl.Series([n for _, n in labels], dtype=pl.String))
    laid = laid.join(combos, on=("key", "char", "typed", "hidden"), how="inner", nulls_equal=True,
                     maintain_order="left")
    frame = laid.select("action", "down", "up", "key_class", key="label",
                        modifiers=pl.when(pl.col("mods") != "").then("mods"))
    frame = frame.with_columns(_plain(frame[name]) for name in ("key_class", "key", "modifiers"))
    # The rows are grouped by action already: neighbours within it by masks, not windows (much faster).
    action = frame["action"].to_numpy()
    starts = np.r_[True, action[1:] != action[:-1]] if action.size else np.zeros(0, dtype=bool)
    at = np.arange(action.size)
    frame = frame.with_columns(position=pl.Series(at - np.maximum.accumulate(np.where(starts, at, 0)),
                                                  dtype=pl.Int32),
                               _first=pl.Series(starts))
    down, up, inside = pl.col("down"), pl.col("up"), ~pl.col("_first")
    frame = frame.with_columns(
        prev_key=pl.col("key").gather(pl.when(inside).then(pl.int_range(pl.len()) - 1)),  # nulls hold no bytes
        hold_ms=(up - down) / 1e6,
        dd_ms=pl.when(inside).then(down - down.shift(1)) / 1e6,
        ud_ms=pl.when(inside).then(down - up.shift(1)) / 1e6,
        # A window, as before, for its validity buffer: the card's in-memory sizes count it.
        rollover=(down.shift(-1).over("action") < up).fill_null(False),
    )
    context = actions.select("session_id", "device_id", "episode_index", "seq_index")
    return pl.concat([context[frame["action"]], frame.select(
        "position", "key_class", "key", "prev_key", "modifiers", "hold_ms", "dd_ms", "ud_ms", "rollover")],
        how="horizontal")


def _plain(column: pl.Series) -> pl.Series:
    """The column without a validity buffer when it holds no null, as one built from a list is: the
    card's in-memory sizes count that buffer, and a build must not depend on how a column was made."""
    return pl.Series(column.name, column.to_arrow()) if column.null_count() == 0 else column


def _masked_presses(listed: pl.DataFrame, presses: pl.DataFrame,
                    spans: list[list[tuple[int, int]] | None]) -> list[int]:
    """The presses of typing runs whose identity the redaction hides. Only runs with a redacted span or a
    backspace can hide any (without either, nothing typed was deleted and nothing was found)."""
    typing = listed.filter(pl.col("kind") == "type")
    found = pl.Series([a for a, sp in enumerate(spans) if sp], dtype=pl.Int64)
    backspaces = presses.filter(pl.col("key") == "backspace")["press"]
    deleting = typing.filter(pl.col("press").is_in(backspaces.implode()))["action"]
    runs = typing.filter(pl.col("action").is_in(found.implode()) | pl.col("action").is_in(deleting.implode())) \
        .join(presses.select("press", "key", "char"), on="press", how="left", maintain_order="left")
    hidden: list[int] = []
    for a, own, keys, chars in runs.group_by("action", maintain_order=True).agg("press", "key", "char").iter_rows():
        hidden += [own[j] for j in _masked(keys, chars, spans[a])]
    return hidden


def _class_and_name(key: str, char: str | None, typed: bool) -> tuple[str, str | None]:
    modifier = MODIFIER_KEYS.get(key)
    if modifier is not None:
        return "modifier", modifier[0]
    if typed and char is not None and char.isprintable():
        return key_class(key, char), char  # typed text keeps its case: "H", not the hotkey spelling "h"
    return key_class(key, char), key_name(key, char)


def _masked(keys: list[str], chars: list[str | None], spans: list[tuple[int, int]] | None) -> set[int]:
    """Which of a typing run's presses (their keys and chars, in order) the redaction hides (module docstring)."""
    kept: list[int] = []  # press of each character of the text, in order
    deleted: list[int] = []
    for i, (key, char) in enumerate(zip(keys, chars)):
        if char is not None and char.isprintable():
            kept.append(i)
        elif key == "backspace" and kept:
            deleted.append(kept.pop())
    masked = {kept[j] for start, end in (spans or ()) for j in range(start, min(end, len(kept)))}
    if spans or not kept:
        masked.update(deleted)
    return masked
