"""Keyboard events to ``type``, ``hotkey`` and ``key`` actions.

What pynput records under X (see ``capture/_x11.py``): ``key`` is a pynput name
("shift", "ctrl_l", "enter", "space") or the character produced; ``char`` is
that character when printable, already reflecting Shift/AltGr/Caps Lock
("H", "!"). Ctrl does not change it under X ("s" for ctrl+s); elsewhere it may
be a control character ("\\x13"), which is read back as its letter.

Rules:
    * Modifier keys (ctrl, alt, shift, super = pynput "cmd", AltGr; left and
      right variants) and lock keys (caps/num/scroll lock) make no action;
      they are state. Their key_down/key_up track which modifiers are held.
    * ``type``: a key_down with a printable ``char`` while no ctrl/alt/super
      is held (shift and AltGr are allowed: they are already in the char).
      Consecutive ones form one run. Backspace (no modifier) removes the last
      character of the run and joins its provenance; on an empty run it is a
      ``key`` action "backspace". A run ends at any other action (keyboard or
      pointer), at a pause longer than ``type_merge_s`` between its keys, at
      an episode boundary (app switch, idle gap, pause) and at the session end.
      A FOCUS event that only changes the title in the same application does
      not end a run: editors and terminals retitle themselves *because* of
      the typing ("*notes.txt"). A run whose characters were all deleted is
      still emitted, with text "", so its key presses stay accounted for.
    * ``hotkey``: a non-modifier key pressed while ctrl, alt or super is held,
      or while shift is held and the key is not printable (shift+tab).
      Written ``ctrl+alt+shift+super+<key>`` (that order; left/right merged).
    * ``key``: a non-printable key alone: enter, tab, escape, arrows, delete,
      home/end, page_up/page_down, f1..f24, backspace outside a run...
    * Auto-repeat (key_down again without key_up) acts once per key_down.
    * Key names: letters lowercase in hotkeys ("ctrl+shift+t", whatever case
      pynput gave), " " is "space", "+" is "plus", "esc" is "escape", other
      characters as produced (layouts differ, so "ctrl+shift+!" is not
      guessed back to "1").

Only key_downs of non-modifier keys are provenance. key_ups make no action
and only matter for modifiers (a key_up whose case differs from its key_down,
as pynput reports "h" after "H" once shift is up, is therefore harmless).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._reduce import ActionSink

__all__ = ["KeyboardReducer", "MODIFIER_KEYS", "LOCK_KEYS", "key_name"]

# pynput name -> (modifier, physical key). "cmd" is pynput's name for the super/Windows key.
MODIFIER_KEYS: dict[str, tuple[str, str]] = {
    "ctrl": ("ctrl", "left"), "ctrl_l": ("ctrl", "left"), "ctrl_r": ("ctrl", "right"),
    "alt": ("alt", "left"), "alt_l": ("alt", "left"), "alt_r": ("alt", "right"),
    "shift": ("shift", "left"), "shift_l": ("shift", "left"), "shift_r": ("shift", "right"),
    "cmd": ("super", "left"), "cmd_l": ("super", "left"), "cmd_r": ("super", "right"),
    "super": ("super", "left"), "super_l": ("super", "left"), "super_r": ("super", "right"),
    # AltGr (ISO_Level3_Shift) picks a character on the key, like shift: it never makes a hotkey.
    "alt_gr": ("alt_gr", "right"),
}
# Toggles whose effect is already in ``char`` (Caps Lock) or that change no text: state, not actions.
LOCK_KEYS = frozenset({"caps_lock", "num_lock", "scroll_lock"})
_HOTKEY_ORDER = ("ctrl", "alt", "shift", "super")
_CHORD = frozenset({"ctrl", "alt", "super"})
_RENAMED = {"esc": "escape", " ": "space", "+": "plus", "return": "enter", "prior": "page_up",
            "next": "page_down"}


def key_name(key: str, char: str | None) -> str:
    """The name of a non-modifier key as written in ``keys``: "s", "space", "enter", "f5", "plus"."""
    name = char if char is not None else key
    if len(name) == 1:
        if name < " ":  # ctrl+letter delivered as a control character: \x01..\x1a are a..z
            name = chr(ord(name) + 96) if "\x01" <= name <= "\x1a" else f"vk_{ord(name)}"
        name = name.lower()
    return _RENAMED.get(name, name)


class KeyboardReducer:
    """The keyboard half of the action state machine (one instance per build; ``reset`` between sessions)."""

    __slots__ = ("_out", "_merge_ns", "_held", "mods", "_chord", "_shift",
                 "_run_row", "_run_seqs", "_run_chars", "_run_t0", "_run_t")

    def __init__(self, out: ActionSink, type_merge_s: float):
        self._out = out
        self._merge_ns = int(type_merge_s * 1e9)
        self._held: set[tuple[str, str]] = set()
        self.mods = ""  # held modifiers as written in keys ("ctrl+shift"); read by the pointer reducer
        self._chord = False
        self._shift = False
        self._run_seqs: list[int] | None = None  # the open typed run, if any
        self._run_chars: list[str] = []
        self._run_row = self._run_t0 = self._run_t = 0

    def key_down(self, row: int, seq: int, t: int, key: str, char: str | None) -> bool:
        """Handle a key press; True when it made or extended an action (which ends pointer merges)."""
        modifier = MODIFIER_KEYS.get(key)
        if modifier is not None:
            if modifier not in self._held:
                self._held.add(modifier)
                self._modifiers_changed()
            return False
        if key in LOCK_KEYS:
            return False
        if not self._chord:
            if char is not None and char.isprintable():
                seqs = self._run_seqs
                if seqs is not None and t - self._run_t > self._merge_ns:
                    self.interrupt()
                    seqs = None
                if seqs is None:
                    self._run_seqs = [seq]
                    self._run_chars = [char]
                    self._run_row, self._run_t0 = row, t
                else:
                    seqs.append(seq)
                    self._run_chars.append(char)
                self._run_t = t
                return True
            if not self._shift:
                if key == "backspace" and self._run_chars and t - self._run_t <= self._merge_ns:
                    self._run_chars.pop()
                    self._run_seqs.append(seq)  # type: ignore[union-attr]  # chars imply an open run
                    self._run_t = t
                    return True
                self.interrupt()
                self._out.key("key", row, seq, t, key_name(key, char))
                return True
        self.interrupt()
        self._out.key("hotkey", row, seq, t, self.mods + "+" + key_name(key, char))
        return True

    def key_up(self, key: str) -> None:
        modifier = MODIFIER_KEYS.get(key)
        if modifier is None:
            return
        if modifier in self._held:
            self._held.discard(modifier)
        else:  # released under another name than it was pressed: release that modifier whichever side
            self._held = {held for held in self._held if held[0] != modifier[0]}
        self._modifiers_changed()

    def interrupt(self) -> None:
        """End the open typed run, if any (another action started, or an episode ended)."""
        seqs = self._run_seqs
        if seqs is not None:
            self._out.type(self._run_row, seqs, self._run_t0, self._run_t, "".join(self._run_chars))
            self._run_seqs = None
            self._run_chars = []

    def reset(self) -> None:
        """End the run and forget held modifiers: after a pause or at a session's end their key_ups are lost."""
        self.interrupt()
        self._held.clear()
        self._modifiers_changed()

    def _modifiers_changed(self) -> None:
        active = {mod for mod, _ in self._held}
        self.mods = "+".join(mod for mod in _HOTKEY_ORDER if mod in active)
        self._chord = not active.isdisjoint(_CHORD)
        self._shift = "shift" in active
