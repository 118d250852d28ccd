"""The observer: at each action boundary, what was in front of the person (a frame, the element, the geometry).

Where it sits: the gate hands the observer every event it lets through
(``Gate.observe``, set only while the policy's ``observe`` is not ``none``,
so an agent that observes nothing pays nothing per event). That call runs on
a listener thread under the queue's lock, so it only classifies the event
and, at an action boundary, appends a request to a small bounded queue:

    button_down    a button press
    hotkey         a key pressed while ctrl, alt or super is held
    typing_start   the first key of a typing run (after another kind of action, or a pause of
                   ``TYPING_GAP_S``)
    scroll_start   the first scroll step after another action, or a pause of ``SCROLL_GAP_S``

The observer's own thread takes each request at once (so the frame shows
the window as the action met it, give or take the app's first repaint),
reads the window in front, and builds the ``Observation``; the writer tells
it the action event's ``seq`` when it numbers it (``numbered``), and the
observation then goes to the ``ObservationUploader``.

Gating, checked on the observer thread before the grab and again after it,
so a pause or a withdrawal that lands during a grab still discards it:
recording must be on (consent, not paused, in hours: the gate's own
decision), and the window actually grabbed must be one the policy allows
and not a password prompt (checked on its class, process and title read
at grab time, not on the gate's last FOCUS event, which may be a few ms
old). What is skipped for these reasons is counted in ``skipped``; what
the observer meant to take and could not is a loss, counted in ``lost`` by
reason (``OBSERVATION_LOSSES``), never dropped silently.

Rate: at most ``max_per_second`` (the policy's, N) in any second, applied
when the request is made (a sliding log of the last ceil(N) requests taken:
one more is taken only once the oldest is ceil(N)/N seconds old); a refused
one is lost as ``rate_limited``. Requests wait at most ``QUEUE_MAX`` deep (``queue_full``).
"""

from __future__ import annotations

import collections
import logging
import math
import sys
import threading
import time
from typing import Any, Callable

from ..events import EventKind
from ..observations import Box, Element, Frame, Observation
from ..policy import Policy
from ._backend import RawEvent
from ._gate import Gate, _modifier, is_password_prompt

__all__ = ["OBSERVATION_LOSSES", "Observer"]

log = logging.getLogger("deskcorder.capture")

Queued = tuple[int, int, RawEvent]

# Every way an observation the observer meant to take can be lost.
OBSERVATION_LOSSES = ("rate_limited", "queue_full", "grab_failed", "encode_failed", "unnumbered", "outbox_full",
                      "refused")
# Why an observation was not taken at all, as the policy wants (not a loss).
OBSERVATION_SKIPS = ("not_recording", "out_of_scope", "password_prompt", "no_window")

_KEY_DOWN, _KEY_UP = EventKind.KEY_DOWN, EventKind.KEY_UP
_BUTTON_DOWN, _SCROLL, _MOVE, _FOCUS = EventKind.BUTTON_DOWN, EventKind.SCROLL, EventKind.MOVE, EventKind.FOCUS
_CHORD_MODIFIERS = frozenset({"ctrl", "alt", "super"})  # shift alone makes capitals, not shortcuts


class _Request:
    __slots__ = ("item", "trigger", "x", "y", "seq", "observation", "made_at")

    def __init__(self, item: Queued | None, trigger: str, x: int | None, y: int | None):
        self.item = item  # held so that id(item) names it until the writer numbers it
        self.trigger = trigger  # "prepare" (a FOCUS: redirect the window early) or one of TRIGGERS
        self.x, self.y = x, y
        self.seq: int | None = None
        self.observation: Observation | None = None
        self.made_at = time.monotonic()


class Observer:
    QUEUE_MAX = 4
    TYPING_GAP_S = 1.0
    SCROLL_GAP_S = 0.5
    SEQ_WAIT_S = 30.0  # an action event the writer never numbered (the spool refused it) frees its observation
    ELEMENT_TIMEOUT_S = 0.25

    def __init__(self, gate: Gate, session_id: str, deliver: Callable[[Observation], bool], *,
                 grabber_factory: Callable[[], Any] | None = None,
                 element_at: Callable[..., Element | None] | None = None):
        """``deliver`` takes a finished observation (the uploader's ``add``; False: it was full)."""
        self._gate = gate
        self._protected_boxes: dict[Any, list[Box]] = {}  # window -> password fields clicked, window pixels
        self._session_id = session_id
        self._deliver = deliver
        self._grabber_factory = grabber_factory
        self._element_at = element_at
        self._element_checked = element_at is not None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: collections.deque[_Request] = collections.deque()
        self._awaiting: dict[int, _Request] = {}  # id(item) -> request, until the writer numbers the item
        self._thread: threading.Thread | None = None
        self._stop = False
        self.level = "none"
        self._policy: Policy | None = None
        self._max_side, self._format = 1280, "webp"
        self._taken_at: collections.deque[float] = collections.deque(maxlen=2)  # the rate's sliding log
        self._window_s = 1.0
        # Classifier state (listener threads, under the queue's lock).
        self._mods: set[str] = set()
        self._last_kind: str | None = None
        self._last_ns = 0
        self._pointer: tuple[int | None, int | None] = (None, None)
        self.requested = 0
        self.taken = 0
        self.frames = 0
        self.frame_bytes = 0
        self.elements = 0
        self.lost: dict[str, int] = dict.fromkeys(OBSERVATION_LOSSES, 0)
        self.skipped: dict[str, int] = dict.fromkeys(OBSERVATION_SKIPS, 0)
        self.last_error: str | None = None

    # -- the agent's side ---------------------------------------------------------------------
    def set_policy(self, policy: Policy | None) -> bool:
        """Follow the policy the collector sent; True when observing is on (the gate should call ``admitted``)."""
        level = policy.observe if policy is not None else "none"
        with self._lock:
            self._policy = policy
            self.level = level
            if policy is not None:
                settings = policy.frames
                self._max_side, self._format = settings.max_side, settings.format
                slots = math.ceil(settings.max_per_second)
                if slots != self._taken_at.maxlen:
                    self._taken_at = collections.deque(maxlen=slots)
                self._window_s = slots / settings.max_per_second
            if level != "none" and self._thread is None and not self._stop:
                self._thread = threading.Thread(target=self._run, name="deskcorder-observer", daemon=True)
                self._thread.start()
            self._wake.notify()  # observing may have ended: the thread lets its X connection go
        return level != "none"

    def stop(self, timeout: float = 2.0) -> None:
        with self._lock:
            self._stop = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        atspi = sys.modules.get(f"{__package__}._atspi")
        if atspi is not None:  # the shared AT-SPI reader may be connected: it goes with the agent, while the
            atspi._close_shared()  # desktop's bus is still there (a bus gone first leaves a logged EOFError)

    # -- listener side (under the queue's lock) ------------------------------------------------
    def admitted(self, item: Queued) -> None:
        """An event the gate recorded: classify it and, at an action boundary, ask for an observation."""
        event = item[2]
        kind = event.kind
        trigger: str | None = None
        if kind is _MOVE:
            self._pointer = (event.x, event.y)
            return
        if kind is _KEY_DOWN or kind is _KEY_UP:
            modifier = _modifier(event)
            if modifier is not None:
                (self._mods.add if kind is _KEY_DOWN else self._mods.discard)(modifier)
                return
            if kind is _KEY_UP:
                return
            if self._mods & _CHORD_MODIFIERS:
                trigger = "hotkey"
            elif self._last_kind != "typing" or item[0] - self._last_ns > self.TYPING_GAP_S * 1e9:
                trigger = "typing_start"
            self._last_kind, self._last_ns = "typing", item[0]
        elif kind is _BUTTON_DOWN:
            self._pointer = (event.x, event.y)
            trigger = "button_down"
            self._last_kind = "button"
        elif kind is _SCROLL:
            self._pointer = (event.x, event.y)
            if self._last_kind != "scroll" or item[0] - self._last_ns > self.SCROLL_GAP_S * 1e9:
                trigger = "scroll_start"
            self._last_kind, self._last_ns = "scroll", item[0]
        elif kind is _FOCUS:
            self._mods.clear()  # key releases in another window were not ours to see
            self._last_kind = None
            self._submit(_Request(None, "prepare", None, None))
            return
        if trigger is None or (self.level == "elements" and trigger != "button_down"):
            return
        self._submit(_Request(item, trigger, *self._pointer))

    def _submit(self, request: _Request) -> None:
        with self._lock:
            if request.item is None:  # a FOCUS: worth preparing for, never worth a loss
                if self.level == "frames" and len(self._queue) < self.QUEUE_MAX:
                    self._queue.append(request)
                    self._wake.notify()
                return
            self.requested += 1
            now = time.monotonic()
            taken_at = self._taken_at
            if len(taken_at) == taken_at.maxlen and now - taken_at[0] < self._window_s:
                self.lost["rate_limited"] += 1
                return
            if len(self._queue) >= self.QUEUE_MAX:
                self.lost["queue_full"] += 1
                return
            taken_at.append(now)
            self._awaiting[id(request.item)] = request
            self._queue.append(request)
            self._wake.notify()

    # -- writer side ------------------------------------------------------------------------------
    def numbered(self, item: Queued, seq: int) -> None:
        """The writer gave ``item`` its ``seq`` (called for every event written while observing)."""
        if not self._awaiting:
            return
        with self._lock:
            request = self._awaiting.pop(id(item), None)
            if request is None:
                return
            request.seq = seq
            done = request.observation
        if done is not None:
            done.action_seq = seq
            self._hand_over(done)

    # -- the observer's thread ------------------------------------------------------------------
    def _run(self) -> None:
        grabber = None
        if not self._element_checked:  # the real AT-SPI reader: connect now, or the first clicks' lookups time out
            self._element_ready_early()
        try:
            while True:
                with self._lock:
                    while not self._queue and not self._stop:
                        if grabber is not None and self.level == "none":
                            break  # observing ended: let the server drop our redirections
                        # Asleep while idle; awake now and then only to free observations never numbered.
                        self._wake.wait(self.SEQ_WAIT_S / 2 if self._awaiting else None)
                        self._expire()
                    if self._stop:
                        return
                    request = self._queue.popleft() if self._queue else None
                if request is None:
                    grabber.close()
                    grabber = None
                    continue
                if grabber is None:
                    grabber = self._open_grabber(request)
                    if grabber is None:
                        continue
                if not self._take(grabber, request):
                    grabber.close()  # the connection broke: a new one for the next request
                    grabber = None
        finally:
            if grabber is not None:
                grabber.close()

    def _open_grabber(self, request: _Request) -> Any:
        try:
            if self._grabber_factory is None:
                from ._x11_frames import WindowGrabber
                self._grabber_factory = WindowGrabber
            return self._grabber_factory()
        except Exception as exc:  # the display went away (the backend reports that); this observation only
            self._lose(request, "grab_failed", f"cannot connect to the X display for observations: {exc}")
            return None

    def _take(self, grabber: Any, request: _Request) -> bool:
        """Observe for ``request`` (or skip, or count the loss); False when the X connection is broken."""
        from Xlib.error import ConnectionClosedError

        from ._x11_frames import GrabFailed, encode_frame

        try:
            facts = grabber.active()
            if facts is None:
                return self._skip(request, "no_window")
            why = self._refusal(facts)
            if why is not None:
                return self._skip(request, why)
            if request.item is None:
                grabber.prepare(facts.window)
                return True
            level, max_side, fmt = self.level, self._max_side, self._format
            t_mono, t_wall = time.monotonic_ns(), time.time_ns()
            geometry = grabber.geometry(facts.window)
            element = self._element(request, facts.pid) if request.trigger == "button_down" else None
            window = geometry.window
            if request.trigger == "button_down":
                self._note_protected(facts.window, window, element)
            frame = None
            if level == "frames":
                grab = grabber.grab(facts.window)
                # Every password field clicked in this window stays black in its later frames too (its dots
                # would show the length), in window pixels, so a moved window keeps them in place.
                masks = [Box(b.x, b.y, b.width, b.height) for b in self._protected_boxes.get(facts.window, ())]
                try:
                    data, width, height, masked = encode_frame(grab, max_side=max_side, fmt=fmt, masks=masks)
                except Exception as exc:  # a Pillow failure costs this frame, never the agent
                    self._lose(request, "encode_failed", f"cannot encode a frame: {exc}")
                    return True
                frame = Frame(fmt, width, height, data, masked)
        except GrabFailed as exc:
            self._lose(request, "grab_failed", str(exc))
            return True
        except (ConnectionClosedError, OSError) as exc:
            self._lose(request, "grab_failed", f"the X connection broke: {exc}")
            return False
        except Exception as exc:  # an X error we did not expect: this observation only
            self._lose(request, "grab_failed", f"{type(exc).__name__}: {exc}")
            return True
        # A pause, withdrawal or switch to another window while we grabbed: what we hold was not allowed.
        if not self._gate.recording:
            return self._skip(request, "not_recording")
        window = geometry.window
        observation = Observation(self._session_id, -1, t_mono, t_wall, request.trigger, geometry.screen_width,
                                  geometry.screen_height, window.x, window.y, window.width, window.height,
                                  list(geometry.monitors), geometry.dpi, frame, element)
        self.taken += 1
        if frame is not None:
            self.frames += 1
            self.frame_bytes += len(frame.data)
        if element is not None:
            self.elements += 1
        with self._lock:
            seq = request.seq
            if seq is None:
                request.observation = observation  # the writer has not numbered the action yet
                return True
        observation.action_seq = seq
        self._hand_over(observation)
        return True

    PROTECTED_PER_WINDOW = 8  # password fields remembered per window (the newest)

    def _note_protected(self, window_id: Any, window: Box, element: Element | None) -> None:
        """After a click: typing goes into a password field (the gate withholds the keys) or not."""
        protected = element is not None and element.protected
        self._gate.protected_input = protected
        if protected:
            assert element is not None
            box = Box(element.box.x - window.x, element.box.y - window.y, element.box.width, element.box.height)
            boxes = self._protected_boxes.setdefault(window_id, [])
            if box not in boxes:
                boxes.append(box)
                del boxes[:-self.PROTECTED_PER_WINDOW]
            while len(self._protected_boxes) > 64:  # windows long gone
                self._protected_boxes.pop(next(iter(self._protected_boxes)))

    def _refusal(self, facts: Any) -> str | None:
        if not self._gate.recording:
            return "not_recording"
        if is_password_prompt(facts.app_class, facts.app_process, facts.title):
            return "password_prompt"
        policy = self._policy
        if policy is None or not policy.allows_app(facts.app_class, facts.app_process, facts.title):
            return "out_of_scope"
        return None

    @staticmethod
    def _element_ready_early() -> None:
        try:
            from ._atspi import warm_up
        except ImportError:  # AT-SPI support is not installed: observations carry no element
            return
        warm_up()

    def _element(self, request: _Request, pid: int | None) -> Element | None:
        if not self._element_checked:
            self._element_checked = True
            try:
                from ._atspi import element_at
            except ImportError:  # AT-SPI support is not installed: observations carry no element
                element_at = None
            self._element_at = element_at
        if self._element_at is None or request.x is None or request.y is None:
            return None
        try:
            element = self._element_at(request.x, request.y, pid, timeout_s=self.ELEMENT_TIMEOUT_S)
        except Exception as exc:  # an app's accessibility tree is no reason to lose the frame
            log.debug("no element at (%s, %s): %s", request.x, request.y, exc)
            return None
        if element is not None and element.protected:
            element.name = None  # a password field's label or contents are never recorded
        return element

    def _skip(self, request: _Request, why: str) -> bool:
        if request.item is not None:
            with self._lock:
                self._awaiting.pop(id(request.item), None)
                self.skipped[why] += 1
        return True

    def _lose(self, request: _Request, reason: str, detail: str) -> None:
        if self.last_error is None or self.last_error != detail:
            log.warning("observation lost (%s): %s", reason, detail)
        self.last_error = detail
        with self._lock:
            if request.item is not None:
                self._awaiting.pop(id(request.item), None)
            self.lost[reason] += 1

    def record_lost(self, reason: str, quantity: int = 1) -> None:
        """Count ``quantity`` observations lost for ``reason`` (one of OBSERVATION_LOSSES) after they left here."""
        with self._lock:
            self.lost[reason] += quantity

    def _hand_over(self, observation: Observation) -> None:
        if not self._deliver(observation):
            with self._lock:
                self.lost["outbox_full"] += 1

    def _expire(self) -> None:
        """Free observations whose action event was never numbered (under the lock)."""
        cutoff = time.monotonic() - self.SEQ_WAIT_S
        old = [key for key, request in self._awaiting.items()
               if request.made_at < cutoff and request not in self._queue]
        for key in old:
            del self._awaiting[key]
            self.lost["unnumbered"] += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"level": self.level, "requested": self.requested, "taken": self.taken, "frames": self.frames,
                    "frame_bytes": self.frame_bytes, "elements": self.elements, "lost": dict(self.lost),
                    "skipped": dict(self.skipped),
                    "keys_withheld_in_password_fields": self._gate.withheld_protected}
