"""Pointer events to ``click``, ``double_click``, ``right_click``, ``middle_click``, ``drag`` and ``scroll``.

Rules:
    * A press is a button_down and the next button_up of the same button.
      Released more than ``drag_threshold_px`` (Euclidean) from where it went
      down, it is a ``drag`` (x, y where it went down, x2, y2 where it was
      released); otherwise a click: ``click`` (left, and buttons without a
      kind of their own, named in ``button``), ``right_click``,
      ``middle_click``. Provenance: the down, the moves in between (one move
      belongs to at most one press: the earliest still held) and the up.
    * ``double_click``: two left clicks (neither a drag), the second
      button_down within ``double_click_s`` and ``double_click_px`` of the
      first, with the same modifiers and no other action in between. A third
      click starts afresh (so a triple click is a double click and a click).
    * ``scroll``: scroll events merged while each follows the previous within
      ``scroll_merge_s``, the held modifiers stay the same, the direction
      does not turn (a step up after steps down starts a new scroll, so up
      then down never sums to 0, 0), and no other action comes between;
      dx/dy summed, x/y of the first.
    * ``keys`` of a pointer action: the modifiers held when it started
      ("ctrl" for ctrl+click, ctrl+scroll zoom), null when none.
    * A press still open at an episode boundary goes on (clicking another
      window is what switches applications, and the focus event lands
      between the down and the up); at a PAUSE or the session's end it is
      emitted unreleased (its click kind, x2/y2 null, ending at the down).
      A button_up without its down (lost across a pause) makes no action.
    * Moves alone make no action.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._reduce import ActionSink

__all__ = ["PointerReducer"]

_CLICK_KIND = {"left": "click", "right": "right_click", "middle": "middle_click"}


class _Press:
    """A button press, open (``up_row`` None) or released; ``first`` is the click it makes a double click with."""

    __slots__ = ("button", "row", "seq", "t", "x", "y", "keys", "first", "up_row", "up_seq", "up_t")

    def __init__(self, button: str, row: int, seq: int, t: int, x: int, y: int, keys: str):
        self.button, self.row, self.seq, self.t, self.x, self.y, self.keys = button, row, seq, t, x, y, keys
        self.first: _Press | None = None
        self.up_row: int | None = None
        self.up_seq = self.up_t = 0


class PointerReducer:
    """The pointer half of the action state machine (one instance per build; ``close`` between sessions)."""

    __slots__ = ("_out", "_drag2", "_dc_ns", "_dc2", "_scroll_ns", "_open", "_pending",
                 "_sc_row", "_sc_seqs", "_sc_t0", "_sc_t", "_sc_x", "_sc_y", "_sc_dx", "_sc_dy", "_sc_keys")

    def __init__(self, out: ActionSink, *, drag_threshold_px: int, double_click_s: float, double_click_px: int,
                 scroll_merge_s: float):
        self._out = out
        self._drag2 = drag_threshold_px * drag_threshold_px
        self._dc_ns = int(double_click_s * 1e9)
        self._dc2 = double_click_px * double_click_px
        self._scroll_ns = int(scroll_merge_s * 1e9)
        self._open: dict[str, _Press] = {}  # button -> press not released yet
        self._pending: _Press | None = None  # a left click that a second one may still make a double click
        self._sc_seqs: list[int] | None = None  # the open scroll, if any
        self._sc_row = self._sc_t0 = self._sc_t = self._sc_x = self._sc_y = self._sc_dx = self._sc_dy = 0
        self._sc_keys = ""

    def button_down(self, row: int, seq: int, t: int, button: str, x: int, y: int, keys: str) -> None:
        if self._sc_seqs is not None:
            self._flush_scroll()
        press = _Press(button, row, seq, t, x, y, keys)
        first = self._pending
        if first is not None:
            self._pending = None
            if (button == "left" and t - first.t <= self._dc_ns and keys == first.keys
                    and (x - first.x) ** 2 + (y - first.y) ** 2 <= self._dc2):
                press.first = first
            else:
                self._emit_press(first)
        stale = self._open.get(button)
        if stale is not None:  # its button_up was lost: it cannot still be held
            self._emit_press(stale)
        self._open[button] = press

    def button_up(self, row: int, seq: int, t: int, button: str, x: int, y: int) -> None:
        press = self._open.pop(button, None)
        if press is None:
            return
        press.up_row, press.up_seq, press.up_t = row, seq, t
        if (x - press.x) ** 2 + (y - press.y) ** 2 > self._drag2:
            if press.first is not None:
                self._emit_press(press.first)
            self._out.press("drag", press, x, y, None)
        elif press.first is not None:
            self._out.press("double_click", press.first, None, None, press)
        elif button == "left":
            self._pending = press
        else:
            self._emit_press(press)

    def scroll(self, row: int, seq: int, t: int, x: int, y: int, dx: int, dy: int, keys: str) -> None:
        if self._pending is not None:
            self._emit_press(self._pending)
            self._pending = None
        seqs = self._sc_seqs
        if seqs is not None:
            if t - self._sc_t <= self._scroll_ns and keys == self._sc_keys \
                    and dx * self._sc_dx >= 0 and dy * self._sc_dy >= 0:
                seqs.append(seq)
                self._sc_t = t
                self._sc_dx += dx
                self._sc_dy += dy
                return
            self._flush_scroll()
        self._sc_seqs = [seq]
        self._sc_row, self._sc_t0, self._sc_t = row, t, t
        self._sc_x, self._sc_y, self._sc_dx, self._sc_dy, self._sc_keys = x, y, dx, dy, keys

    def interrupt(self) -> None:
        """Another action started or the episode ended: emit the waiting click and the open scroll."""
        if self._pending is not None:
            self._emit_press(self._pending)
            self._pending = None
        if self._sc_seqs is not None:
            self._flush_scroll()

    def close(self) -> None:
        """A pause or the session's end: also emit presses never released, in the order they went down."""
        self.interrupt()
        for press in sorted(self._open.values(), key=lambda p: p.row):
            if press.first is not None:
                self._emit_press(press.first)
            self._emit_press(press)
        self._open.clear()

    def _emit_press(self, press: _Press) -> None:
        self._out.press(_CLICK_KIND.get(press.button, "click"), press, None, None, None)

    def _flush_scroll(self) -> None:
        self._out.scroll(self._sc_row, self._sc_seqs, self._sc_t0, self._sc_t,  # type: ignore[arg-type]
                         self._sc_x, self._sc_y, self._sc_dx, self._sc_dy, self._sc_keys)
        self._sc_seqs = None
