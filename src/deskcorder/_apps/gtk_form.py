"""An accessible GTK 3 form for the tests and the demo: a button, a text entry, a password entry, a label.

Runs under Debian's /usr/bin/python3 with python3-gi and gir1.2-gtk-3.0, as
``/usr/bin/python3 <deskcorder._apps.GTK_FORM>``, never under the project's
virtual environment (which has no PyGObject), so it imports nothing from
deskcorder. GTK 3
exposes its widgets over AT-SPI (atk-bridge) when a session D-Bus with
at-spi2-core is there and ``NO_AT_BRIDGE`` is unset.

Once the window is mapped and the window manager has stopped moving it, it
prints one JSON line (flushed) with its process id, X window id and every
widget's box in root-window pixels, as GTK itself allocated them, so a test
knows the real boxes without asking AT-SPI; it prints again whenever a box
changes. SIGTERM (or closing the window) ends it.

Its WM_CLASS is ("deskcorder-form", "DeskcorderForm"). Options: ``--title``,
``--x``/``--y`` (initial position, default 40, 40).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("GdkX11", "3.0")
from gi.repository import Gdk, GdkX11, GLib, Gtk  # noqa: E402  (after require_version, as PyGObject asks)

WM_CLASS = "DeskcorderForm"
SETTLE_CHECKS = 3  # unchanged boxes in this many polls 50 ms apart: the WM has placed the window


def _root_box(widget: Gtk.Widget, toplevel: Gtk.Window) -> dict[str, int]:
    """The widget's allocation in root-window pixels (what AT-SPI's screen extents should say)."""
    x, y = widget.translate_coordinates(toplevel, 0, 0)
    _, ox, oy = toplevel.get_window().get_origin()
    return {"x": ox + x, "y": oy + y, "width": widget.get_allocated_width(), "height": widget.get_allocated_height()}


class Form:
    def __init__(self, title: str, x: int, y: int):
        self.window = Gtk.Window(title=title)
        self.window.set_default_size(360, 200)
        self.window.move(x, y)
        self.window.connect("destroy", Gtk.main_quit)

        grid = Gtk.Grid(row_spacing=8, column_spacing=8, margin=12)
        self.window.add(grid)
        name_label = Gtk.Label(label="Name:", xalign=0)
        self.entry = Gtk.Entry()
        # An explicit accessible name: what AT-SPI reports for the element (a label's mnemonic relation alone
        # does not name a GTK 3 entry).
        self.entry.get_accessible().set_name("Name")
        name_label.set_mnemonic_widget(self.entry)
        password_label = Gtk.Label(label="Password:", xalign=0)
        self.password = Gtk.Entry(visibility=False)  # GTK 3 gives it the AT-SPI role "password text"
        self.password.get_accessible().set_name("Password")
        password_label.set_mnemonic_widget(self.password)
        self.button = Gtk.Button(label="Submit")
        self.button.connect("clicked", self._submitted)
        self.status = Gtk.Label(label="Not submitted yet", xalign=0)
        self.clicks = 0

        grid.attach(name_label, 0, 0, 1, 1)
        grid.attach(self.entry, 1, 0, 1, 1)
        grid.attach(password_label, 0, 1, 1, 1)
        grid.attach(self.password, 1, 1, 1, 1)
        grid.attach(self.button, 1, 2, 1, 1)
        grid.attach(self.status, 0, 3, 2, 1)

        self._last: str | None = None
        self._stable = 0
        self._candidate: str | None = None
        self.window.connect("map-event", self._mapped)
        self.window.show_all()

    def _mapped(self, *_args: object) -> bool:
        GLib.timeout_add(50, self._poll)
        return False  # let GTK handle the event too

    def _submitted(self, _button: Gtk.Button) -> None:
        self.clicks += 1
        # Says that it was submitted, never what was typed (the password least of all).
        self.status.set_text(f"Submitted {self.clicks} time{'s' if self.clicks != 1 else ''}")
        self._report(force=True)

    def _boxes(self) -> str:
        w = self.window
        widgets = {"submit": self.button, "entry": self.entry, "password": self.password, "label": self.status}
        info = {
            "pid": os.getpid(),
            "xid": w.get_window().get_xid() if isinstance(w.get_window(), GdkX11.X11Window) else None,
            "title": w.get_title(),
            "clicks": self.clicks,
            "window": _root_box(w, w),
            **{name: _root_box(widget, w) for name, widget in widgets.items()},
        }
        return json.dumps(info, sort_keys=True)

    def _report(self, force: bool = False) -> None:
        line = self._boxes()
        if force or line != self._last:
            self._last = line
            print(line, flush=True)

    def _poll(self) -> bool:
        """Every 50 ms: print the boxes once they have settled, and again whenever they change."""
        line = self._boxes()
        if line == self._last:
            return True
        self._stable = self._stable + 1 if line == self._candidate else 0
        self._candidate = line
        if self._stable >= SETTLE_CHECKS - 1:
            self._report()
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--title", default="deskcorder form")
    parser.add_argument("--x", type=int, default=40)
    parser.add_argument("--y", type=int, default=40)
    args = parser.parse_args(argv)
    # WM_CLASS ("deskcorder-form", "DeskcorderForm"): the class is what the agent records as app_class and a
    # policy matches; GTK would otherwise take it from the file name.
    GLib.set_prgname("deskcorder-form")
    Gdk.set_program_class(WM_CLASS)
    Form(args.title, args.x, args.y)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: Gtk.main_quit() or False)
    Gtk.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
