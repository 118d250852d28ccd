"""The X11 capture backend: pynput keyboard and mouse listeners plus the focus tracker.

pynput reads input through the X RECORD extension, one thread and X
connection per listener. Its callbacks run on those threads, so they only
build a ``RawEvent`` and submit it (see ``_queue``); they never raise either,
because an exception in a pynput callback stops that listener for good.

What pynput delivers under X11 (and so what is recorded):
    * keys: a ``Key`` member (``Key.shift``, ``Key.space``...) or a ``KeyCode``
      with the character the key produced *given the modifiers at that moment*
      and the keysym as ``vk``. ``xdotool type H`` releases Shift before H, so
      that key_up arrives as "h" (vk 104) while its key_down was "H" (vk 72).
    * buttons by name ("left", "right", "middle", "button8"...); wheel clicks
      are buttons 4-7 that pynput reports as scrolls of one step
      (button 5 -> dy=-1) and never as releases.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

from ..events import EventKind
from ._backend import CaptureUnavailable, EventSink, RawEvent
from ._x11_focus import FocusTracker

__all__ = ["X11Backend"]

_KEY_DOWN, _KEY_UP = EventKind.KEY_DOWN, EventKind.KEY_UP
_MOVE, _SCROLL = EventKind.MOVE, EventKind.SCROLL
_BUTTON_DOWN, _BUTTON_UP = EventKind.BUTTON_DOWN, EventKind.BUTTON_UP
_MAX_KEY = 64  # events._MAX_STRING["key"]
_MAX_CHAR = 8


class X11Backend:
    """Capture from the X display named by ``$DISPLAY`` (pynput only reads it from there)."""

    RECORD_START_TIMEOUT_S = 5.0

    def __init__(self, *, focus_poll_s: float = 0.25):
        self._focus_poll_s = focus_poll_s
        self._listeners: list[Any] = []
        self._focus: FocusTracker | None = None
        self._stopping = False

    def start(self, sink: EventSink) -> None:
        _check_display()
        try:
            from pynput import keyboard, mouse
        except ImportError as exc:  # pynput picks its backend at import and fails without a usable display
            raise CaptureUnavailable(f"pynput cannot use this display: {exc}") from exc
        self._stopping = False
        self._focus = FocusTracker(sink, poll_s=self._focus_poll_s)
        self._focus.start()  # first, so the session starts with the FOCUS of the window already active

        def failed(exc: BaseException) -> None:
            if not self._stopping:
                sink.fail(CaptureUnavailable(f"input listener stopped: {type(exc).__name__}: {exc}"))

        callbacks = _callbacks(sink)
        self._listeners = [
            _recording(keyboard.Listener)(failed, on_press=callbacks["press"], on_release=callbacks["release"]),
            _recording(mouse.Listener)(failed, on_move=callbacks["move"], on_click=callbacks["click"],
                                       on_scroll=callbacks["scroll"]),
        ]
        for listener in self._listeners:
            listener.start()
        for listener in self._listeners:
            if not listener.recording.wait(self.RECORD_START_TIMEOUT_S):
                self.stop()
                raise CaptureUnavailable(f"the X server did not start recording input within "
                                         f"{self.RECORD_START_TIMEOUT_S:.0f} s (RECORD extension)")

    def stop(self) -> None:
        self._stopping = True
        for listener in self._listeners:
            try:
                listener.stop()
                listener.join(2.0)
            except Exception:
                pass  # the display is already gone; nothing left to release
        self._listeners = []
        if self._focus is not None:
            self._focus.stop()
            self._focus = None

    def resync(self) -> None:
        if self._focus is not None:
            self._focus.resync()


def _check_display() -> None:
    display = os.environ.get("DISPLAY")
    if not display:
        raise CaptureUnavailable("no X display: DISPLAY is not set; run the agent inside the desktop session "
                                 "or set DISPLAY (for example DISPLAY=:0)")
    import Xlib.display
    import Xlib.error

    try:
        probe = Xlib.display.Display(display)
    except (Xlib.error.DisplayError, Xlib.error.ConnectionClosedError, OSError) as exc:
        raise CaptureUnavailable(f"cannot open X display {display!r}: {exc}; check DISPLAY and that this "
                                 f"user may connect (xhost/XAUTHORITY)") from exc
    try:
        if not probe.has_extension("RECORD"):
            raise CaptureUnavailable(f"X display {display!r} lacks the RECORD extension that input capture "
                                     f"needs; enable it in the X server (Xvfb: +extension RECORD)")
    finally:
        probe.close()


def _recording(base: type) -> Callable[..., Any]:
    """A pynput listener class that says when RECORD is live and reports a lost display instead of raising."""

    class Recording(base):  # type: ignore[misc, valid-type]
        def __init__(self, on_failure: Callable[[BaseException], None], **callbacks: Any):
            super().__init__(**callbacks)
            self.recording = threading.Event()
            self._on_failure = on_failure

        # pynput internals: RECORD calls _handler with every reply, the first being
        # StartOfData once the server records; waiting for it means start() returns
        # only when no input can slip past.
        def _handler(self, events: Any) -> Any:
            self.recording.set()
            return super()._handler(events)

        # pynput sends RecordDisableContext on the connection that is blocked reading the
        # recorded data, without flushing it, so stop() waited for the next input event
        # (2 s join timeouts per listener on an idle desk). The RECORD spec's way is the
        # other connection, flushed; pynput's own cleanup does the same.
        def _stop_platform(self) -> None:
            if not hasattr(self, "_context"):
                self.wait()
            try:
                self._display_stop.record_disable_context(self._context)
                self._display_stop.flush()
            except Exception:
                pass  # the display is gone: the record thread ends on its own

        def _run(self) -> None:
            try:
                super()._run()
            except Exception as exc:  # the X connection broke: report it, do not print a thread traceback
                self.recording.set()
                self._on_failure(exc)

    return Recording


def _callbacks(sink: EventSink) -> dict[str, Callable[..., None]]:
    from pynput.keyboard import Key

    submit = sink.submit
    key_cache: dict[Any, tuple[str, str | None, int | None]] = {}

    def key_fields(key: Any) -> tuple[str, str | None, int | None]:
        if key is None:
            return ("unknown", None, None)  # a keycode pynput could not map
        if isinstance(key, Key):
            fields = key_cache.get(key)
            if fields is None:
                char = key.value.char
                fields = key_cache[key] = (key.name, char if char and char.isprintable() else None, key.value.vk)
            return fields
        char = key.char
        if char:
            return (char[:_MAX_KEY], char[:_MAX_CHAR] if char.isprintable() else None, key.vk)
        return (f"vk_{key.vk}", None, key.vk)

    def guarded(build: Callable[..., RawEvent]) -> Callable[..., None]:
        def callback(*args: Any) -> None:
            try:
                submit(build(*args))
            except Exception:
                sink.record_lost("callback_error")
        return callback

    return {
        "press": guarded(lambda key, _injected: RawEvent(_KEY_DOWN, *key_fields(key))),
        "release": guarded(lambda key, _injected: RawEvent(_KEY_UP, *key_fields(key))),
        "move": guarded(lambda x, y, _injected: RawEvent(_MOVE, x=x, y=y)),
        "click": guarded(lambda x, y, button, pressed, _injected: RawEvent(
            _BUTTON_DOWN if pressed else _BUTTON_UP, button=button.name, x=x, y=y)),
        "scroll": guarded(lambda x, y, dx, dy, _injected: RawEvent(_SCROLL, x=x, y=y, dx=dx, dy=dy)),
    }
