"""Which application has the focus, on X11: FOCUS events from python-xlib.

On its own X connection (python-xlib connections are not shared between
threads here), the tracker listens for ``PropertyNotify`` of
``_NET_ACTIVE_WINDOW`` on the root window, and of ``_NET_WM_NAME``/``WM_NAME``
on the active window for title changes. A window manager without EWMH
support sets no ``_NET_ACTIVE_WINDOW``; then the tracker polls
``XGetInputFocus`` instead.

Each FOCUS event carries the geometry in force: the screen size (the root
window's, asked each time, so a RandR resize is seen) and the focused
window's client area in root coordinates, so a dataset can normalise every
coordinate to the screen and the window. A resized screen (``ConfigureNotify``
on the root) or a moved or resized active window (``ConfigureNotify`` on it,
synthetic from the window manager for a move) is followed by a new FOCUS
event once it has stayed still for ``_GEOMETRY_SETTLE_S``: dragging a window
across the screen makes one event, not one per step.

Windows vanish between the notification and our questions about them; X
answers with BadWindow, which becomes a FOCUS event with unknown fields
instead of a crash.

Window managers clear ``_NET_ACTIVE_WINDOW`` for a moment while they move
the focus from one window to the next (openbox does). "No window" is
therefore reported only once it has lasted ``_NO_WINDOW_GRACE_S``; otherwise
every app switch would record a spurious focus on nothing.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from typing import Any

import Xlib.display
import Xlib.error
import Xlib.X
import Xlib.Xatom
import Xlib.xobject.drawable

from ..events import EventKind
from ._backend import CaptureUnavailable, EventSink, RawEvent

__all__ = ["FocusTracker"]

log = logging.getLogger("deskcorder.capture")

# The event model's column limits (events._MAX_STRING): longer values would get a batch refused.
_MAX_TITLE = 1024
_MAX_NAME = 256
_NO_WINDOW_GRACE_S = 0.15
_GEOMETRY_SETTLE_S = 0.2
_WINDOW_EVENTS = Xlib.X.PropertyChangeMask | Xlib.X.StructureNotifyMask

_Info = tuple[str | None, str | None, str | None]  # app_process, app_class, window_title
_Bounds = tuple[int | None, int | None, int | None, int | None]  # x, y, width, height (client area, root coords)
_NO_BOUNDS: _Bounds = (None, None, None, None)


class FocusTracker:
    def __init__(self, sink: EventSink, *, poll_s: float = 0.25):
        self._sink = sink
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._resync = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="deskcorder-focus", daemon=True)
        self._active: int | None = None
        self._last: tuple[int | None, _Info, _Bounds, tuple[int | None, int | None]] | None = None
        self._no_window_since: float | None = None
        self._geometry_due: float | None = None  # when a moved window or resized screen has settled

    def start(self) -> None:
        """Connect, submit the FOCUS event for the window already active, then follow changes."""
        try:
            self._d = Xlib.display.Display()
        except Exception as exc:
            raise CaptureUnavailable(f"cannot open X display {os.environ.get('DISPLAY')!r} for window "
                                     f"tracking: {exc}") from exc
        self._d.set_error_handler(_ignore)  # errors of requests without replies: a window we watched is gone
        atom = self._d.intern_atom
        self._root = self._d.screen().root
        self._NET_ACTIVE_WINDOW = atom("_NET_ACTIVE_WINDOW")
        self._NET_WM_NAME = atom("_NET_WM_NAME")
        self._NET_WM_PID = atom("_NET_WM_PID")
        self._UTF8_STRING = atom("UTF8_STRING")
        supported = self._root.get_full_property(atom("_NET_SUPPORTED"), Xlib.Xatom.ATOM)
        self.ewmh = supported is not None and self._NET_ACTIVE_WINDOW in supported.value
        # StructureNotify on the root: its own ConfigureNotify, when RandR resizes the screen.
        self._root.change_attributes(event_mask=Xlib.X.StructureNotifyMask
                                     | (Xlib.X.PropertyChangeMask if self.ewmh else 0))
        if not self.ewmh:
            log.info("window manager does not support _NET_ACTIVE_WINDOW; polling the input focus every %.2f s",
                     self._poll_s)
        self._update(force=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(2.0)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        try:
            self._d.close()
        except Exception:
            pass  # the server may be gone already

    def resync(self) -> None:
        """Submit a FOCUS event for the active window even if it has not changed."""
        self._resync.set()
        os.write(self._wake_w, b"x")

    # -- loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except (Xlib.error.ConnectionClosedError, OSError) as exc:
            if not self._stop.is_set():
                self._sink.fail(CaptureUnavailable(f"lost the connection to X display "
                                                   f"{os.environ.get('DISPLAY')!r}: {exc}"))

    def _loop(self) -> None:
        d = self._d
        root_id = self._root.id
        while not self._stop.is_set():
            changed = not self.ewmh
            # pending_events() also reads the socket: events that arrived during our
            # own round trips sit in python-xlib's queue, where select() cannot see them.
            while d.pending_events():
                ev = d.next_event()
                if ev.type == Xlib.X.ConfigureNotify and ev.window.id in (root_id, self._active):
                    self._geometry_due = time.monotonic() + _GEOMETRY_SETTLE_S
                    continue
                if ev.type != Xlib.X.PropertyNotify:
                    continue
                if ev.window.id == root_id and ev.atom == self._NET_ACTIVE_WINDOW:
                    changed = True
                elif ev.window.id == self._active and ev.atom in (self._NET_WM_NAME, Xlib.Xatom.WM_NAME):
                    changed = True
            force = self._resync.is_set()
            if self._geometry_due is not None and time.monotonic() >= self._geometry_due:
                self._geometry_due = None
                changed = True
            if changed or force or self._no_window_since is not None:
                self._resync.clear()
                self._update(force=force)
            if d.pending_events():
                continue
            timeout = self._poll_s if not self.ewmh else 5.0
            if self._no_window_since is not None:
                timeout = min(timeout, max(0.0, self._no_window_since + _NO_WINDOW_GRACE_S - time.monotonic()))
            if self._geometry_due is not None:
                timeout = min(timeout, max(0.0, self._geometry_due - time.monotonic()))
            ready, _, _ = select.select([d.fileno(), self._wake_r], [], [], timeout)
            if self._wake_r in ready:
                os.read(self._wake_r, 64)

    # -- X questions --------------------------------------------------------------------
    def _update(self, *, force: bool) -> None:
        window = self._active_window()
        if window is None and self._last is not None and self._last[0] is not None:
            now = time.monotonic()
            if self._no_window_since is None:
                self._no_window_since = now
            if now - self._no_window_since < _NO_WINDOW_GRACE_S:
                if force:
                    self._resync.set()  # keep the request for when the grace ends
                return  # probably the window manager between two windows; look again shortly
        self._no_window_since = None
        info = self._describe(window) if window is not None else (None, None, None)
        bounds = self._bounds(window) if window is not None else _NO_BOUNDS
        screen = self._screen_size()
        if not force and self._last == (window, info, bounds, screen):
            return
        if window != self._active:
            self._watch(self._active, 0)
            self._watch(window, _WINDOW_EVENTS)
            self._active = window
        self._last = (window, info, bounds, screen)
        app_process, app_class, title = info
        x, y, width, height = bounds
        self._sink.submit(RawEvent(EventKind.FOCUS, app_process=app_process, app_class=app_class,
                                   window_title=title, screen_width=screen[0], screen_height=screen[1],
                                   window_x=x, window_y=y, window_width=width, window_height=height))

    def _screen_size(self) -> tuple[int | None, int | None]:
        """The root window's size now (the connection's setup data would miss a RandR resize)."""
        try:
            geometry = self._root.get_geometry()
        except Xlib.error.XError:
            return (None, None)
        return (int(geometry.width), int(geometry.height))

    def _active_window(self) -> int | None:
        try:
            if self.ewmh:
                prop = self._root.get_full_property(self._NET_ACTIVE_WINDOW, Xlib.X.AnyPropertyType)
                wid = int(prop.value[0]) if prop is not None and len(prop.value) else 0
                return wid or None
            return self._client_of(self._d.get_input_focus().focus)
        except Xlib.error.XError:
            return None

    def _client_of(self, window: Any) -> int | None:
        """The top-level client window (the one with WM_CLASS) holding the input focus."""
        root_id = self._root.id
        while isinstance(window, Xlib.xobject.drawable.Window) and window.id != root_id:
            if window.get_wm_class() is not None:
                return window.id
            window = window.query_tree().parent
        return None  # None, PointerRoot or the root window: no application has the focus

    def _watch(self, wid: int | None, mask: int) -> None:
        if wid is not None:
            self._d.create_resource_object("window", wid).change_attributes(event_mask=mask)

    def _describe(self, wid: int) -> _Info:
        window = self._d.create_resource_object("window", wid)
        try:
            wm_class = window.get_wm_class()
            prop = window.get_full_property(self._NET_WM_NAME, self._UTF8_STRING)
            if prop is not None and prop.value:
                title: str | None = _text(prop.value)
            else:
                name = window.get_wm_name()
                title = _text(name) if name else None
            pid = window.get_full_property(self._NET_WM_PID, Xlib.Xatom.CARDINAL)
        except Xlib.error.XError:
            return (None, None, None)  # the window vanished while we asked
        process = _process_name(int(pid.value[0])) if pid is not None and len(pid.value) else None
        app_class = wm_class[1][:_MAX_NAME] if wm_class else None
        return (process, app_class, title[:_MAX_TITLE] if title else None)

    def _bounds(self, wid: int) -> _Bounds:
        """The window's client area in root coordinates (get_geometry's x, y are relative to the WM's frame)."""
        window = self._d.create_resource_object("window", wid)
        try:
            size = window.get_geometry()
            origin = self._root.translate_coords(window, 0, 0)  # the window's (0, 0) in the root's coordinates
        except Xlib.error.XError:
            return _NO_BOUNDS  # the window vanished while we asked
        return (int(origin.x), int(origin.y), int(size.width), int(size.height))


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _process_name(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()[:_MAX_NAME] or None
    except OSError:
        return None  # gone, or a client on another machine/PID namespace


def _ignore(error: Xlib.error.XError, request: Any) -> None:
    pass
