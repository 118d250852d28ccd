"""A desk with accessibility: a private session D-Bus on the Xvfb of tests/capture_rig.py, and the GTK form.

``a11y_bus(xs)`` starts ``dbus-daemon --session`` with DISPLAY on the X session
and points this process's ``DBUS_SESSION_BUS_ADDRESS`` at it (restored after),
so whatever reads the session bus here (the agent's element reader) and every
app started with ``bus.env`` share it. The first GTK app asks the bus for
``org.a11y.Bus``, which starts at-spi-bus-launcher (Debian's at-spi2-core),
its accessibility bus and the registry; stopping the session bus ends them
too (the launcher leaves when its session bus goes).

``with chromium_app(xs, bus, url) as proc:`` runs Chromium (a web app window)
with its accessibility tree on.

``with gtk_form(xs, bus) as form:`` runs src/deskcorder/_apps/gtk_form.py under
Debian's /usr/bin/python3 (python3-gi), from the moment it has printed its
widgets' boxes (``form.box("submit")``, root pixels) to SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from typing import Any, Iterator

import pytest

from deskcorder._apps import GTK_FORM, SYSTEM_PYTHON
from deskcorder._xsession import XSession

from .helpers import _stop


def have_gtk() -> bool:
    """Debian's python3-gi with GTK 3, dbus-daemon and at-spi2-core: what these tests need (scripts/setup)."""
    if not (shutil.which("dbus-daemon") and os.path.exists("/usr/libexec/at-spi-bus-launcher")
            and os.path.exists(SYSTEM_PYTHON)):
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('Gtk', '3.0')"],
                           capture_output=True)
    return probe.returncode == 0


needs_gtk = pytest.mark.skipif(not have_gtk(), reason="needs dbus-daemon, at-spi2-core and python3-gi with "
                                                      "gir1.2-gtk-3.0 (scripts/setup installs them)")


class A11yBus:
    """A running private session bus: ``address``, and ``env`` for its apps (the X session's, the bus, accessibility on)."""

    def __init__(self, address: str, env: dict[str, str]):
        self.address, self.env = address, env


def _app_env(xs: XSession, runtime_dir: str) -> dict[str, str]:
    env = xs.env
    env.pop("NO_AT_BRIDGE", None)  # set, it keeps GTK's atk-bridge from ever joining the accessibility bus
    env.pop("AT_SPI_BUS_ADDRESS", None)
    env.update({"XDG_RUNTIME_DIR": runtime_dir,  # the launcher's bus socket goes here, not in a shared ~/.cache
                "GSETTINGS_BACKEND": "memory",  # no dconf service to start on a bare test bus
                "GDK_BACKEND": "x11",
                # Toolkits that build their tree only for assistive technology: Chromium/Electron, Qt.
                "ACCESSIBILITY_ENABLED": "1", "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1"})
    return env


@contextlib.contextmanager
def a11y_bus(xs: XSession) -> Iterator[A11yBus]:
    """A private session bus for ``xs``; this process's DBUS_SESSION_BUS_ADDRESS points at it while the block runs."""
    runtime_dir = tempfile.mkdtemp(prefix="deskcorder-a11y-")
    env = _app_env(xs, runtime_dir)
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    saved = {k: os.environ.get(k) for k in ("DBUS_SESSION_BUS_ADDRESS", "AT_SPI_BUS_ADDRESS")}
    try:
        env["DBUS_SESSION_BUS_ADDRESS"] = _Lines(daemon).next(10.0, "dbus-daemon did not print its address").strip()
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = env["DBUS_SESSION_BUS_ADDRESS"]
        os.environ.pop("AT_SPI_BUS_ADDRESS", None)
        yield A11yBus(env["DBUS_SESSION_BUS_ADDRESS"], env)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _stop(daemon)
        daemon.stdout.close()
        shutil.rmtree(runtime_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def a11y(xs: XSession) -> Iterator[A11yBus]:
    """A module's private session bus on capture_rig's ``xs`` (import both fixtures into the test module)."""
    with a11y_bus(xs) as bus:
        yield bus


class GtkForm:
    """The running form: ``boxes`` as it last printed them (root pixels), ``pid``, ``xid``."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self._lines = _Lines(proc)
        self.boxes: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def xid(self) -> int:
        return int(self.boxes["xid"])

    def box(self, widget: str) -> tuple[int, int, int, int]:
        b = self.boxes[widget]
        return b["x"], b["y"], b["width"], b["height"]

    def centre(self, widget: str) -> tuple[int, int]:
        x, y, w, h = self.box(widget)
        return x + w // 2, y + h // 2

    def read(self, timeout: float = 15.0) -> dict[str, Any]:
        """Wait for the form's next line of boxes."""
        self.boxes = json.loads(self._lines.next(timeout, "the GTK form printed no boxes"))
        return self.boxes

    def refresh(self) -> dict[str, Any]:
        """The latest boxes already printed (the form prints again when a box moves or Submit is clicked)."""
        for line in self._lines.ready():
            self.boxes = json.loads(line)
        return self.boxes


@contextlib.contextmanager
def gtk_form(xs: XSession, bus: A11yBus, *args: str) -> Iterator[GtkForm]:
    """The GTK form on ``xs`` with ``bus``, once its window is mapped and placed; SIGTERM when the block ends."""
    proc = subprocess.Popen([SYSTEM_PYTHON, str(GTK_FORM), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=bus.env)
    try:
        form = GtkForm(proc)
        form.read()
        yield form
    finally:
        _stop(proc)
        proc.stdout.close()


CHROMIUM = os.environ.get("DESKCORDER_CHROMIUM", "/usr/bin/chromium")


@contextlib.contextmanager
def chromium_app(xs: XSession, bus: A11yBus, url: str, geometry: str = "800,600") -> Iterator[subprocess.Popen]:
    """Chromium showing ``url`` in an app window at the screen's top left, accessibility tree on."""
    profile = tempfile.mkdtemp(prefix="deskcorder-chromium-")
    proc = subprocess.Popen([CHROMIUM, "--no-sandbox",  # tests run as root in CI, where the sandbox refuses to
                             "--force-renderer-accessibility", f"--user-data-dir={profile}", "--no-first-run",
                             "--no-default-browser-check", "--disable-gpu", "--window-position=0,0",
                             f"--window-size={geometry}", f"--app={url}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=bus.env)
    try:
        yield proc
    finally:
        _stop(proc)
        shutil.rmtree(profile, ignore_errors=True)


class _Lines:
    """Lines from a child's stdout without blocking past a deadline (raw reads: no buffered lines hidden from select)."""

    def __init__(self, proc: subprocess.Popen):
        assert proc.stdout is not None
        self._proc, self._fd, self._buffer = proc, proc.stdout.fileno(), b""

    def _fill(self, wait_s: float) -> bool:
        if not select.select([self._fd], [], [], wait_s)[0]:
            return True
        chunk = os.read(self._fd, 65536)
        self._buffer += chunk
        return bool(chunk)

    def ready(self) -> list[str]:
        self._fill(0)
        *lines, self._buffer = self._buffer.split(b"\n")
        return [line.decode() for line in lines]

    def next(self, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            if time.monotonic() > deadline or not self._fill(0.05):
                raise AssertionError(f"{what} within {timeout:.0f} s (exit status {self._proc.poll()})")
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()
