"""The gate: whether an event may be recorded, decided before it is queued, so nothing else ever sees it.

Recording is on only while all of these hold, checked in this order (the
first that fails names the PAUSE marker's ``reason``):

    consent   the collector's latest answer says recording_allowed      no_consent, consent_withdrawn,
                                                                        policy_changed, paused_remotely, ...
    user      not paused by the person (hotkey, ``deskcorder agent pause``)   paused_by_user (or the API's reason)
    hours     now is inside the policy's working hours                   outside_hours
    window    the active window is one the policy allows                 out_of_scope
              and not a password prompt                                  password_prompt

While recording is off, events are dropped here, FOCUS events included:
the title and class of a window out of scope never reach the queue, the
spool or the disk. The stream only shows an opaque PAUSE marker when
recording stops and a RESUME marker (reason: what cleared: consent_given,
resumed_by_user, in_hours, in_scope) followed by the FOCUS of the window in
front when it starts again; the gap between them is all a dataset learns.
Markers are written only around recorded time: a session that never
recorded has none, and a session's first event is its first FOCUS.

The FOCUS events decide the window's scope, so input is attributed to the
window the focus tracker last reported: keys typed within a few
milliseconds of a switch, before X reports the new active window, follow
the previous window's decision. Pointer events follow the window in front
too: a click or scroll over a background window that is out of scope is
recorded (as coordinates only) while the window in front is in scope; the
click that brings it to the front is the last one.

Password prompts are recognised by title (sudo, passphrase, unlock, login
...) and by application (pinentry, askpass, polkit agents, password
managers) and are out of scope whatever the policy says. A prompt inside a
terminal that keeps its title (``sudo`` typed in an xterm) is not
recognised; policies should leave terminals out or exclude such titles.

The pause hotkey is recognised here too, so its own keys are never
recorded: presses of the hotkey's modifiers are held back (not queued) until
the next event shows they were not part of the hotkey, and the releases that
follow a hotkey are swallowed.

Every method runs under the queue's lock (see ``EventQueue.submit`` and
``apply``) and appends what is to be recorded to the queue's list, so a
marker and the events around it are ordered and timestamped as one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Callable

from ..events import EventKind
from ..policy import Policy
from ._backend import RawEvent
from ._status import RecordingStatus

__all__ = ["DEFAULT_PAUSE_HOTKEY", "Gate", "Hotkey", "is_password_prompt", "parse_hotkey"]

Queued = tuple[int, int, RawEvent]  # (t_mono_ns, t_wall_ns, event), as in _queue

DEFAULT_PAUSE_HOTKEY = "ctrl+alt+shift+p"

_FOCUS, _PAUSE, _RESUME = EventKind.FOCUS, EventKind.PAUSE, EventKind.RESUME
_KEY_DOWN, _KEY_UP = EventKind.KEY_DOWN, EventKind.KEY_UP
_FOREVER_NS = 2**63 - 1

# Window titles of password and secret prompts, in any application.
_PASSWORD_TITLE = re.compile(
    r"pass(word|wd|phrase|code)"  # password, passwd, passphrase, passcode
    r"|\bpin\b|\bsudo\b|\bunlock|\blog ?in\b|\bsign ?in\b|authenticat|credential|keyring|private key"
    r"|one.time code|\b2fa\b|passwort|mot de passe|contrase",  # a few non-English prompts
    re.IGNORECASE)
# Applications (WM_CLASS or process name) that only ever show secrets.
_PASSWORD_APP = re.compile(
    r"pinentry|askpass|gcr-prompter|polkit|keyring|kwallet|keepass|1password|bitwarden|lastpass|seahorse",
    re.IGNORECASE)


def is_password_prompt(app_class: str | None, app_process: str | None, title: str | None) -> bool:
    return bool((title and _PASSWORD_TITLE.search(title))
                or (app_class and _PASSWORD_APP.search(app_class))
                or (app_process and _PASSWORD_APP.search(app_process)))


# -- the pause hotkey ------------------------------------------------------------------------

_MODIFIER_ALIASES = {"ctrl": "ctrl", "control": "ctrl", "alt": "alt", "meta": "alt", "shift": "shift",
                     "super": "super", "win": "super", "cmd": "super"}
# X keysyms of modifier keys (pynput's ``vk``): left/right variants, and Meta_L/R, which X reports
# for the Alt keys pressed while Shift is down.
_MODIFIER_VK = {0xFFE1: "shift", 0xFFE2: "shift", 0xFFE3: "ctrl", 0xFFE4: "ctrl", 0xFFE7: "alt", 0xFFE8: "alt",
                0xFFE9: "alt", 0xFFEA: "alt", 0xFE03: "alt", 0xFF7E: "alt", 0xFFEB: "super", 0xFFEC: "super"}
_MODIFIER_KEY = {"shift": "shift", "shift_l": "shift", "shift_r": "shift", "ctrl": "ctrl", "ctrl_l": "ctrl",
                 "ctrl_r": "ctrl", "alt": "alt", "alt_l": "alt", "alt_r": "alt", "alt_gr": "alt", "cmd": "super",
                 "cmd_l": "super", "cmd_r": "super"}


@dataclasses.dataclass(frozen=True)
class Hotkey:
    modifiers: frozenset[str]
    key: str  # lower case: a character ("p") or a pynput key name ("f12", "pause")


def parse_hotkey(text: str) -> Hotkey:
    """``"ctrl+alt+shift+p"`` -> Hotkey; ValueError naming what is wrong."""
    parts = [p.strip().lower() for p in text.split("+")]
    if len(parts) < 2 or not all(parts):
        raise ValueError(f"pause hotkey {text!r} must be modifiers and a key joined by '+', "
                         f"e.g. {DEFAULT_PAUSE_HOTKEY!r} (at least one modifier, so normal typing never pauses)")
    *mods, key = parts
    unknown = [m for m in mods if m not in _MODIFIER_ALIASES]
    if unknown:
        raise ValueError(f"pause hotkey {text!r}: {unknown[0]!r} is not a modifier; use ctrl, alt, shift or super")
    if key in _MODIFIER_ALIASES:
        raise ValueError(f"pause hotkey {text!r} must end with a non-modifier key, e.g. 'p' or 'f12'")
    return Hotkey(frozenset(_MODIFIER_ALIASES[m] for m in mods), key)


def _modifier(event: RawEvent) -> str | None:
    return _MODIFIER_VK.get(event.vk) if event.vk is not None else _MODIFIER_KEY.get(event.key or "")


# -- the gate --------------------------------------------------------------------------------

_OPENED_BY = {"consent": "consent_given", "user": "resumed_by_user", "hours": "in_hours", "window": "in_scope"}


class Gate:
    def __init__(self, *, hotkey: Hotkey | None = None):
        self._hotkey = hotkey
        self._consent: str | None = "no_consent"  # None: consent in force; else why not
        self._policy: Policy | None = None
        self._policy_version = 0
        self._user: str | None = None
        self._hours: str | None = None
        self._hours_from_ns = 0  # the hours decision holds for t_wall_ns in [from, until)
        self._hours_until_ns = 0
        self._window: str | None = "out_of_scope"  # no window reported yet: nothing to attribute input to
        self._focus: RawEvent | None = None  # the active window, kept in memory even while out of scope
        self._closed_by = "consent"
        self.reason: str | None = "no_consent"  # why not recording; None while recording
        self.recording = False
        self._started = False  # recorded anything yet (markers only around recorded time)
        self._mods_down: set[str] = set()
        self._held: list[Queued] = []
        self._swallow: set[str] = set()
        # The observer's (``_observe``), while the policy observes anything: sees each recorded event.
        self.observe: Callable[[Queued], None] | None = None
        # Set by the observer when the last click landed on a password field (AT-SPI's protected element),
        # cleared by the next click elsewhere or a change of window: keys typed meanwhile are never recorded.
        self.protected_input = False
        self.withheld_protected = 0  # key events not recorded for that reason

    @property
    def user_paused(self) -> bool:
        return self._user is not None

    @property
    def user_pause_reason(self) -> str | None:
        return self._user

    # -- events ---------------------------------------------------------------------------
    def admit(self, item: Queued, out: list[Queued]) -> None:
        """Append ``item`` to ``out`` if it may be recorded, with any markers it causes."""
        observe = self.observe
        if observe is None:
            return self._admit(item, out)
        before = len(out)
        self._admit(item, out)
        for recorded in out[before:]:  # held-back modifier presses included: the observer sees what is stored
            observe(recorded)

    def _admit(self, item: Queued, out: list[Queued]) -> None:
        event = item[2]
        if not self._hours_from_ns <= item[1] < self._hours_until_ns:
            self._check_hours(item[1])
            self._reevaluate(item[0], item[1], out)
        kind = event.kind
        if kind is _FOCUS:
            self._focus = event
            self.protected_input = False
            self._window = self._scope(event)
            self._reevaluate(item[0], item[1], out, focus_follows=True)
            if self.recording:
                self._emit(item, out)
            return
        if (kind is _KEY_DOWN or kind is _KEY_UP) and self._hotkey is not None and self._hotkey_key(item, out):
            return
        if self.protected_input and (kind is _KEY_DOWN or kind is _KEY_UP) and _modifier(event) is None:
            self.withheld_protected += 1  # typed into a password field: like a password prompt, never recorded
            return
        if self.recording:
            if self._held:
                out.extend(self._held)
                self._held.clear()
            out.append(item)

    def _emit(self, item: Queued, out: list[Queued]) -> None:
        if self._held:
            out.extend(self._held)
            self._held.clear()
        out.append(item)

    def _hotkey_key(self, item: Queued, out: list[Queued]) -> bool:
        """Track modifiers and the pause hotkey; True when ``item`` was consumed (held or swallowed)."""
        hotkey = self._hotkey
        assert hotkey is not None
        event = item[2]
        modifier = _modifier(event)
        name = modifier or (event.key or "").lower()
        if event.kind is _KEY_DOWN:
            if modifier is not None:
                self._mods_down.add(modifier)
                if self.recording and modifier in hotkey.modifiers:
                    self._held.append(item)  # maybe the start of the hotkey: decide at the next event
                    return True
                return False
            if name == hotkey.key and self._mods_down == hotkey.modifiers:
                if name not in self._swallow:  # not the autorepeat of a hotkey still held down
                    self._held.clear()  # the hotkey's own modifier presses: never recorded
                    self.set_user_pause(None if self._user else "paused_by_user", item[0], item[1], out)
                self._swallow = set(self._mods_down) | {name}
                return True
            return False
        if modifier is not None:
            self._mods_down.discard(modifier)
        if name in self._swallow:
            self._swallow.discard(name)
            return True
        return False

    # -- state changes --------------------------------------------------------------------
    def set_status(self, status: RecordingStatus, t_mono: int, t_wall: int, out: list[Queued]) -> None:
        """The collector's latest answer."""
        self._consent = None if status.allowed else (status.reason or "not_allowed")
        if status.policy_version != self._policy_version or (status.policy is None) != (self._policy is None):
            self._policy = status.policy
            self._policy_version = status.policy_version
            self._hours_until_ns = 0  # the hours may have changed too
            if self._focus is not None:
                self._window = self._scope(self._focus)
        self._check_hours(t_wall)
        self._reevaluate(t_mono, t_wall, out)

    def set_user_pause(self, reason: str | None, t_mono: int, t_wall: int, out: list[Queued],
                       resume_reason: str | None = None) -> bool:
        """Pause (``reason``) or resume (None) for the person at the desk; False when nothing changed."""
        if (reason is None) == (self._user is None):
            return False
        self._user = reason
        self._reevaluate(t_mono, t_wall, out, resume_reason=resume_reason)
        return True

    def tick(self, t_mono: int, t_wall: int, out: list[Queued]) -> None:
        """Called every poll, so the working hours end on time even when no input arrives."""
        if not self._hours_from_ns <= t_wall < self._hours_until_ns:
            self._check_hours(t_wall)
            self._reevaluate(t_mono, t_wall, out)

    def flush(self, out: list[Queued]) -> None:
        """Release held-back modifier presses (at stop: they were recorded input after all)."""
        if self.recording and self._held:
            out.extend(self._held)
        self._held.clear()

    # -- decisions ------------------------------------------------------------------------
    def _scope(self, focus: RawEvent) -> str | None:
        if is_password_prompt(focus.app_class, focus.app_process, focus.window_title):
            return "password_prompt"
        if self._policy is None or not self._policy.allows_app(focus.app_class, focus.app_process,
                                                                focus.window_title):
            return "out_of_scope"
        return None

    def _check_hours(self, t_wall: int) -> None:
        hours = self._policy.hours if self._policy is not None else None
        if hours is None:
            self._hours, self._hours_from_ns, self._hours_until_ns = None, 0, _FOREVER_NS
            return
        when = dt.datetime.fromtimestamp(t_wall / 1e9, dt.timezone.utc)
        self._hours = None if hours.contains(when) else "outside_hours"
        minute = 60 * 10**9  # policies name whole minutes: the answer holds until the next one starts
        self._hours_from_ns = t_wall // minute * minute
        self._hours_until_ns = self._hours_from_ns + minute

    def _reevaluate(self, t_mono: int, t_wall: int, out: list[Queued], *, resume_reason: str | None = None,
                    focus_follows: bool = False) -> bool:
        """Start or stop recording as the conditions now say, with the marker; True when it started."""
        for category, reason in (("consent", self._consent), ("user", self._user), ("hours", self._hours),
                                 ("window", self._window)):
            if reason is not None:
                break
        else:
            category, reason = "", None
        opened_by = _OPENED_BY.get(self._closed_by, "resumed")
        self.reason = reason
        if reason is not None:
            self._closed_by = category
            if self.recording:
                self._emit((t_mono, t_wall, RawEvent(_PAUSE, reason=reason)), out)
                self.recording = False
            return False
        if self.recording:
            return False
        self.recording = True
        if self._started:
            out.append((t_mono, t_wall, RawEvent(_RESUME, reason=resume_reason or opened_by)))
        self._started = True
        if not focus_follows and self._focus is not None:
            out.append((t_mono, t_wall, self._focus))  # what is in front now: later input belongs to it
        return True
