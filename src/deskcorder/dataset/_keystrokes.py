"""The ``keystrokes`` table: one row per key press inside a ``type``, ``hotkey`` or ``key`` action.

``KeyTimer`` rides along the action reduction (``_reduce.py``), one call per key
event, and remembers every press: when it went down, when it came up, the
modifiers held. ``keystrokes_frame`` then lays out the presses of each keyboard
action in order.

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

import polars as pl

from ._keyboard import LOCK_KEYS, MODIFIER_KEYS, key_name

__all__ = ["KEY_CLASSES", "KeyTimer", "keystrokes_frame"]

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


class KeyTimer:
    """Every key press of a build: down time, up time, the modifiers held, the modifier presses it came with."""

    __slots__ = ("presses", "ups", "with_mods", "_held", "_pending")

    def __init__(self) -> None:
        self.presses: list[tuple[int, int, int, str, str | None, str]] = []  # (row, seq, t down, key, char, mods)
        self.ups: list[int | None] = []  # t up of each press (None: never seen)
        self.with_mods: dict[int, list[int]] = {}  # press -> the modifier presses that came with it
        self._held: dict[str, int] = {}  # folded key -> press still down
        self._pending: list[int] = []  # modifier presses not yet followed by a key

    def down(self, row: int, seq: int, t: int, key: str, char: str | None, mods: str) -> None:
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
        self.presses.append((row, seq, t, key, char, mods))
        self.ups.append(None)
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
            held = [j for j in self._held.values() if self.presses[j][3] not in MODIFIER_KEYS]
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

    def reset(self) -> None:
        """A pause or a new session: the key_ups of what is held are lost."""
        self._held.clear()
        self._pending = []


def keystrokes_frame(actions: pl.DataFrame, timer: KeyTimer, spans: list[list[tuple[int, int]] | None],
                     session_of_row: pl.Series) -> pl.DataFrame:
    """One row per press of each keyboard action (``actions`` in order, with ``kind``, ``event_seqs``,
    ``row``; ``spans``: what ``redact_runs`` found in each), carrying the action's ``session_id``,
    ``device_id``, ``episode_index`` and ``seq_index`` (the action id is made from them once pseudonymised)."""
    rows, seqs, downs, keys, chars, mods = (list(c) for c in zip(*timer.presses)) if timer.presses \
        else ([], [], [], [], [], [])
    # Which press each listed seq is: a join on (session, seq), sessions numbered by their first row.
    session_no = session_of_row.ne(session_of_row.shift(1)).fill_null(True).cum_sum()
    presses = pl.DataFrame({"s": session_no.gather(rows) if rows else pl.Series([], dtype=pl.UInt32),
                            "seq": pl.Series(seqs, dtype=pl.Int64), "press": pl.int_range(len(rows), eager=True)})
    keyboard = actions.with_row_index("action").filter(pl.col("kind").is_in(KEYBOARD_KINDS))
    listed = keyboard.select("action", "kind", s=session_no.gather(keyboard["row"]), seq=pl.col("event_seqs")) \
        .explode("seq").join(presses, on=("s", "seq"), how="inner", maintain_order="left") \
        .group_by("action", maintain_order=True).agg(pl.col("kind").first(), pl.col("press"))
    order: list[int] = []
    of_action: list[int] = []
    hidden: list[bool] = []
    for a, kind, own in listed.iter_rows():
        masked = _masked(own, keys, chars, spans[a]) if kind == "type" else ()
        for i in own:
            extra = timer.with_mods.get(i)
            if extra:
                order.extend(extra)
                of_action.extend([a] * len(extra))
                hidden.extend([i in masked] * len(extra))
            order.append(i)
            of_action.append(a)
            hidden.append(i in masked)
    names: dict[tuple[str, str | None, bool], tuple[str, str | None]] = {}  # (key, char, typed) -> class, key

    def named(i: int, typed: bool) -> tuple[str, str | None]:
        k = (keys[i], chars[i], typed)
        if k not in names:
            names[k] = _class_and_name(keys[i], chars[i], typed)
        return names[k]

    kinds = actions["kind"].to_list()
    labels = [("redacted", None) if h else named(i, kinds[a] == "type") for i, a, h in zip(order, of_action, hidden)]
    ups = timer.ups
    frame = pl.DataFrame({
        "action": pl.Series(of_action, dtype=pl.Int64),
        "down": pl.Series([downs[i] for i in order], dtype=pl.Int64),
        "up": pl.Series([ups[i] for i in order], dtype=pl.Int64),
        "key_class": pl.Series([c for c, _ in labels], dtype=pl.String),
        "key": pl.Series([n for _, n in labels], dtype=pl.String),
        "modifiers": pl.Series([mods[i] or None for i in order], dtype=pl.String),
    })
    down, up, before = pl.col("down"), pl.col("up"), pl.col("down").shift(1).over("action")
    frame = frame.with_columns(
        position=pl.int_range(pl.len(), dtype=pl.Int32).over("action"),
        prev_key=pl.col("key").shift(1).over("action"),
        hold_ms=(up - down) / 1e6,
        dd_ms=(down - before) / 1e6,
        ud_ms=(down - up.shift(1).over("action")) / 1e6,
        rollover=(down.shift(-1).over("action") < up).fill_null(False),
    )
    context = actions.select("session_id", "device_id", "episode_index", "seq_index")
    return pl.concat([context[frame["action"]], frame.select(
        "position", "key_class", "key", "prev_key", "modifiers", "hold_ms", "dd_ms", "ud_ms", "rollover")],
        how="horizontal")


def _class_and_name(key: str, char: str | None, typed: bool) -> tuple[str, str | None]:
    modifier = MODIFIER_KEYS.get(key)
    if modifier is not None:
        return "modifier", modifier[0]
    if typed and char is not None and char.isprintable():
        return key_class(key, char), char  # typed text keeps its case: "H", not the hotkey spelling "h"
    return key_class(key, char), key_name(key, char)


def _masked(own: list[int], keys: list[str], chars: list[str | None],
            spans: list[tuple[int, int]] | None) -> set[int]:
    """The presses of a typing run whose identity the redaction hides (see the module docstring)."""
    kept: list[int] = []  # press of each character of the text, in order
    deleted: list[int] = []
    for i in own:
        char = chars[i]
        if char is not None and char.isprintable():
            kept.append(i)
        elif keys[i] == "backspace" and kept:
            deleted.append(kept.pop())
    masked = {kept[j] for start, end in (spans or ()) for j in range(start, min(end, len(kept)))}
    if spans or not kept:
        masked.update(deleted)
    return masked
