"""Frames of one X11 window, never of the screen: XComposite, geometry from RandR, Pillow to encode.

A root-window grab shows whatever is on top, so a chat window or a
notification over the recorded app would land in the frame. Instead the
focused window is redirected off-screen with XComposite
(``RedirectAutomatic``: the server still draws it on screen as before) and
its own pixmap is read (``NameWindowPixmap`` + ``GetImage``): the window's
contents, complete even where another window covers it, and nothing else.

A window is redirected once (on the first focus or action that needs it)
and stays redirected while it is among the last ``MAX_REDIRECTED`` windows
grabbed; the server drops our redirections when this connection closes.
When the server redirects a window it seeds the new pixmap with what the
screen showed there (a covering window included) and asks the app to
repaint: the grabber therefore clears the window (ClearArea, which also
sends the app an Expose) and takes no frame of it for ``SETTLE_S``, so that
seed never appears in a frame.

Geometry, taken with every frame: the root window's size (asked each time,
so a RandR resize is seen), the RandR 1.5 monitors, the DPI from their
physical size (else the screen's), and the window's client area in root
coordinates.

One ``WindowGrabber`` per thread (python-xlib connections are not shared
between threads here): the observer's. Pillow is imported by
``encode_frame`` only, on the first frame, so an agent that never takes one
never loads it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import Xlib.display
import Xlib.error
import Xlib.X
import Xlib.Xatom

from ..observations import Box
from ._backend import CaptureUnavailable
from ._x11_focus import _process_name

__all__ = ["Grab", "Geometry", "WindowFacts", "WindowGrabber", "encode_frame"]


@dataclasses.dataclass(frozen=True)
class WindowFacts:
    """What the policy and the password check need to know about the window in front."""

    window: int  # X id
    app_class: str | None
    app_process: str | None
    title: str | None
    pid: int | None


@dataclasses.dataclass(frozen=True)
class Geometry:
    screen_width: int
    screen_height: int
    monitors: list[Box]
    dpi: float | None
    window: Box  # client area, root coordinates


@dataclasses.dataclass(frozen=True)
class Grab:
    """A window's pixels as the server sent them: ``raw`` in Pillow's ``raw_mode`` (e.g. BGRX)."""

    width: int
    height: int
    raw_mode: str
    raw: bytes


class GrabFailed(Exception):
    """The window cannot be read now (gone, unmapped, a depth we do not read): no frame, counted."""


class WindowGrabber:
    SETTLE_S = 0.15  # after a new redirection: time for the app to repaint over the server's seed
    MAX_REDIRECTED = 8

    def __init__(self, display: str | None = None):
        try:
            self._d = Xlib.display.Display(display)
        except Exception as exc:
            raise CaptureUnavailable(f"cannot open the X display for frames: {exc}") from exc
        # Without Composite there are no window-only frames (``grab`` says why), but geometry and
        # elements still work: a root-window grab instead would show whatever covers the window.
        self.no_frames: str | None = None
        if not self._d.has_extension("Composite"):
            self.no_frames = ("the X server lacks the Composite extension that window-only frames need; enable it "
                              "(Xorg: Section \"Extensions\" Option \"Composite\" \"Enable\"), or set observe = "
                              "\"elements\" or \"none\" in the policy")
        else:
            version = self._d.composite_query_version()
            if (version.major_version, version.minor_version) < (0, 2):  # NameWindowPixmap came with 0.2
                self.no_frames = (f"the X server's Composite {version.major_version}.{version.minor_version} "
                                  f"cannot name a window's pixmap (needs 0.2)")
        self._d.set_error_handler(lambda *_: None)  # requests without replies on a window that just vanished
        self._root = self._d.screen().root
        atom = self._d.intern_atom
        self._active_atom = atom("_NET_ACTIVE_WINDOW")
        self._name_atom, self._utf8 = atom("_NET_WM_NAME"), atom("UTF8_STRING")
        self._pid_atom = atom("_NET_WM_PID")
        self._randr_monitors = self._d.has_extension("RANDR") and self._randr_at_least(1, 5)
        self._lsb = self._d.display.info.image_byte_order == Xlib.X.LSBFirst
        self._redirected: dict[int, float] = {}  # window -> time.monotonic() of its redirection

    def close(self) -> None:
        try:
            self._d.close()  # the server lifts this connection's redirections
        except Exception:
            pass

    # -- which window -------------------------------------------------------------------------
    def active(self) -> WindowFacts | None:
        """The window in front now (``_NET_ACTIVE_WINDOW``), with what decides its scope."""
        try:
            prop = self._root.get_full_property(self._active_atom, Xlib.X.AnyPropertyType)
            wid = int(prop.value[0]) if prop is not None and len(prop.value) else 0
            if not wid:
                return None
            win = self._d.create_resource_object("window", wid)
            wm_class = win.get_wm_class()
            named = win.get_full_property(self._name_atom, self._utf8)
            title = named.value if named is not None and named.value else win.get_wm_name()
            pid_prop = win.get_full_property(self._pid_atom, Xlib.Xatom.CARDINAL)
        except Xlib.error.XError:
            return None  # it went away as we asked
        if isinstance(title, bytes):
            title = title.decode("utf-8", "replace")
        pid = int(pid_prop.value[0]) if pid_prop is not None and len(pid_prop.value) else None
        return WindowFacts(wid, wm_class[1] if wm_class else None, _process_name(pid) if pid else None,
                           title or None, pid)

    # -- redirection ----------------------------------------------------------------------------
    def prepare(self, window: int) -> None:
        """Redirect ``window`` now, so that a frame of it can be taken ``SETTLE_S`` later."""
        if self.no_frames is not None:
            return
        if window in self._redirected:
            self._redirected[window] = self._redirected.pop(window)  # most recently used last
            return
        from Xlib.ext import composite

        win = self._d.create_resource_object("window", window)
        win.composite_redirect_window(composite.RedirectAutomatic)
        win.clear_area(0, 0, 0, 0, exposures=True)  # drop the seed; the app repaints on the Expose
        self._d.sync()
        self._redirected[window] = time.monotonic()
        while len(self._redirected) > self.MAX_REDIRECTED:
            oldest = next(iter(self._redirected))
            del self._redirected[oldest]
            self._d.create_resource_object("window", oldest).composite_unredirect_window(composite.RedirectAutomatic)
        self._d.flush()

    # -- pixels and geometry --------------------------------------------------------------------
    def grab(self, window: int) -> Grab:
        """The window's own contents (client area), whatever covers it on screen; GrabFailed if unreadable."""
        if self.no_frames is not None:
            raise GrabFailed(self.no_frames)
        self.prepare(window)
        wait = self._redirected[window] + self.SETTLE_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        win = self._d.create_resource_object("window", window)
        try:
            geometry = win.get_geometry()
            pixmap = win.composite_name_window_pixmap()
            try:
                border = int(geometry.border_width)  # the pixmap includes the border; the frame does not
                image = pixmap.get_image(border, border, geometry.width, geometry.height, Xlib.X.ZPixmap,
                                         0xFFFFFFFF)
            finally:
                pixmap.free()
        except Xlib.error.XError as exc:  # unmapped (BadMatch), destroyed (BadWindow, BadDrawable)
            self._redirected.pop(window, None)
            raise GrabFailed(f"window 0x{window:x} cannot be read: {type(exc).__name__}") from exc
        data = image.data if isinstance(image.data, bytes) else bytes(image.data)
        width, height = int(geometry.width), int(geometry.height)
        if image.depth not in (24, 32) or len(data) < width * height * 4:
            raise GrabFailed(f"window 0x{window:x} has depth {image.depth}; only 24 and 32 bit windows are read")
        mode = ("BGRX" if self._lsb else "XRGB") if image.depth == 24 else ("BGRA" if self._lsb else "ARGB")
        return Grab(width, height, mode, data)

    def geometry(self, window: int) -> Geometry:
        try:
            screen = self._root.get_geometry()
            size = self._d.create_resource_object("window", window).get_geometry()
            origin = self._root.translate_coords(self._d.create_resource_object("window", window), 0, 0)
        except Xlib.error.XError as exc:
            raise GrabFailed(f"window 0x{window:x} is gone: {type(exc).__name__}") from exc
        monitors, dpi = self._monitors(int(screen.width))
        return Geometry(int(screen.width), int(screen.height), monitors, dpi,
                        Box(int(origin.x), int(origin.y), int(size.width), int(size.height)))

    def _monitors(self, screen_width: int) -> tuple[list[Box], float | None]:
        """RandR 1.5 monitors and the DPI of the primary (or first) one; the screen's DPI without RandR."""
        info = self._d.screen()
        dpi = info.width_in_pixels * 25.4 / info.width_in_mms if info.width_in_mms else None
        if not self._randr_monitors:
            return [], dpi
        try:
            reply = self._root.xrandr_get_monitors(is_active=True)
        except Xlib.error.XError:
            return [], dpi
        found = list(reply.monitors)
        boxes = [Box(int(m.x), int(m.y), int(m.width_in_pixels), int(m.height_in_pixels)) for m in found]
        main = next((m for m in found if m.primary), found[0] if found else None)
        if main is not None and main.width_in_millimeters:
            dpi = main.width_in_pixels * 25.4 / main.width_in_millimeters
        return boxes, (round(dpi, 2) if dpi else None)

    def _randr_at_least(self, major: int, minor: int) -> bool:
        try:
            version = self._d.xrandr_query_version()
        except Xlib.error.XError:
            return False
        return (version.major_version, version.minor_version) >= (major, minor)


def encode_frame(grab: Grab, *, max_side: int, fmt: str, masks: list[Box]) -> tuple[bytes, int, int, list[Box]]:
    """``grab`` with ``masks`` (window pixels) blacked out, downscaled to ``max_side``, encoded as ``fmt``.

    Returns (data, width, height, masked boxes in frame pixels). Masking comes before downscaling, so
    no pixel of a masked box survives into the smaller image, not even blended into its neighbours. A box
    is clipped to the window (an element may reach past its edge), scaled, rounded outwards and blacked out
    again in the smaller image, so the box named in ``masked`` is black to its edges.
    """
    import io

    from PIL import Image, ImageDraw

    image: Any = Image.frombuffer("RGB", (grab.width, grab.height), grab.raw, "raw", grab.raw_mode, 0, 1)
    edges = [(max(0, b.x), max(0, b.y), min(grab.width, b.x + b.width), min(grab.height, b.y + b.height))
             for b in masks]
    edges = [(x0, y0, x1, y1) for x0, y0, x1, y1 in edges if x1 > x0 and y1 > y0]
    if edges:
        image = image.copy()  # frombuffer shares the X reply's bytes, which are read-only
        draw = ImageDraw.Draw(image)
        for x0, y0, x1, y1 in edges:
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=(0, 0, 0))
    scale = min(1.0, max_side / max(grab.width, grab.height))
    if scale < 1.0:
        size = (max(1, round(grab.width * scale)), max(1, round(grab.height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    masked = []
    for x0, y0, x1, y1 in edges:
        left, top = math.floor(x0 * scale), math.floor(y0 * scale)
        right, bottom = min(image.width, math.ceil(x1 * scale)), min(image.height, math.ceil(y1 * scale))
        masked.append(Box(left, top, right - left, bottom - top))
    if masked and scale < 1.0:  # the filter blended the box's edges with its surroundings: black all of it again
        draw = ImageDraw.Draw(image)
        for box in masked:
            draw.rectangle((box.x, box.y, box.x + box.width - 1, box.y + box.height - 1), fill=(0, 0, 0))
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, "PNG", compress_level=3)  # level 3: most of level 9's size at a fraction of its CPU
    else:
        # Windows are mostly text and flat colours, which lossless WebP packs best and fastest: a 1030x706
        # terminal page is 5.1 kB in 4.5 ms lossless (method 0), 144 kB in 53 ms lossy (quality 75, method 2),
        # 65 kB as PNG. Photos and video do not pack losslessly: past 1 bit per pixel, lossy if smaller.
        image.save(out, "WEBP", lossless=True, method=0, quality=0)
        if out.tell() * 8 > image.width * image.height:
            lossy = io.BytesIO()
            image.save(lossy, "WEBP", quality=75, method=2)
            if lossy.tell() < out.tell():
                out = lossy
    return out.getvalue(), image.width, image.height, masked
