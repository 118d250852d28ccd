"""A throw-away X11 desktop for the demo and the tests: Xvfb, a window manager, apps, xdotool.

Real input, real windows: the agent cannot tell this session from a desktop,
which is the point. Needs Debian's xvfb, openbox and xdotool (the README's
set-up command and .ci/run install them).

``XSession(session_bus=True)`` also starts a private ``dbus-daemon --session``
for the display (``xs.bus_address``; ``xs.env`` points apps at it with their
accessibility bridge on), so GTK apps join AT-SPI and the agent's element
reader can ask them what is under a click. The first app that asks for
``org.a11y.Bus`` starts at-spi2-core's launcher, which leaves with the bus.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

from ._errors import DeskcorderError

__all__ = ["XSession", "XSessionError"]


class XSessionError(DeskcorderError, RuntimeError):
    pass


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise XSessionError(f"{tool} not found; install it with: sudo apt-get install -y {package}")
    return path


class XSession:
    """Start with ``with XSession() as xs:``; ``xs.env`` is the environment for X clients."""

    def __init__(self, *, width: int = 1280, height: int = 800, window_manager: bool = True,
                 session_bus: bool = False):
        self.width, self.height = width, height
        self._window_manager = window_manager
        self._session_bus = session_bus
        self._procs: list[subprocess.Popen] = []
        self._runtime_dir: str | None = None
        self.display: str | None = None
        self.bus_address: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "XSession":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        xvfb = _need("Xvfb", "xvfb")
        _need("xdotool", "xdotool")
        # -displayfd lets Xvfb pick a free display number and tell us once it accepts clients.
        read_fd, write_fd = os.pipe()
        proc = subprocess.Popen(
            [xvfb, "-displayfd", str(write_fd), "-screen", "0", f"{self.width}x{self.height}x24",
             "-nolisten", "tcp", "+extension", "RECORD"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_fd)
        self._procs.append(proc)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.stop()
            raise XSessionError("Xvfb did not start (no display number reported)")
        self.display = f":{number}"
        if self._window_manager:
            openbox = _need("openbox", "openbox")
            self.spawn([openbox, "--sm-disable"])
            # xprop exits 0 even when the property is unset: look for the value itself.
            self._wait(lambda: "window id" in self._output(["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"]),
                       "openbox did not come up")
        if self._session_bus:
            self._start_session_bus()

    def _start_session_bus(self) -> None:
        daemon = _need("dbus-daemon", "dbus-daemon")
        # The launcher puts its accessibility bus socket here, not in a ~/.cache shared with other sessions.
        self._runtime_dir = tempfile.mkdtemp(prefix="deskcorder-bus-")
        read_fd, write_fd = os.pipe()
        self.spawn([daemon, "--session", "--nofork", "--nopidfile", f"--print-address={write_fd}"],
                   pass_fds=(write_fd,))
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:  # dbus-daemon writes its address once it listens; EOF if it died
            address = pipe.readline().strip()
        if not address:
            self.stop()
            raise XSessionError("dbus-daemon --session did not start (no address printed)")
        self.bus_address = address

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
        if self._runtime_dir is not None:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)
            self._runtime_dir = None
        self.bus_address = None

    @property
    def env(self) -> dict[str, str]:
        if self.display is None:
            raise XSessionError("X session not started")
        env = dict(os.environ)
        env["DISPLAY"] = self.display
        env.pop("WAYLAND_DISPLAY", None)
        if self.bus_address is not None:
            env.pop("NO_AT_BRIDGE", None)  # set, it keeps GTK's atk-bridge off the accessibility bus
            env.pop("AT_SPI_BUS_ADDRESS", None)  # another session's accessibility bus
            env.update({"DBUS_SESSION_BUS_ADDRESS": self.bus_address, "XDG_RUNTIME_DIR": self._runtime_dir or "",
                        "GSETTINGS_BACKEND": "memory",  # no dconf service on a bare bus
                        "GDK_BACKEND": "x11"})
        return env

    # -- clients ---------------------------------------------------------------------------
    def spawn(self, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(list(argv), env=self.env, **kwargs)
        self._procs.append(proc)
        return proc

    def open_window(self, argv: Sequence[str], wm_class: str, timeout: float = 15.0) -> int:
        """Start an app and return the X id of its window (found by WM_CLASS)."""
        self.spawn(argv)
        found: list[int] = []

        def visible() -> bool:
            out = self.xdotool("search", "--onlyvisible", "--class", wm_class, check=False)
            found[:] = [int(w) for w in out.split()]
            return bool(found)

        self._wait(visible, f"no window with WM_CLASS {wm_class!r} appeared", timeout)
        return found[0]

    def xdotool(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise XSessionError(f"xdotool {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def activate(self, window: int) -> None:
        self.xdotool("windowactivate", "--sync", str(window))

    # -- helpers ---------------------------------------------------------------------------
    def _output(self, argv: Sequence[str]) -> str:
        return subprocess.run(list(argv), env=self.env, capture_output=True, text=True).stdout

    @staticmethod
    def _wait(predicate, message: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise XSessionError(f"{message} within {timeout:.0f}s")


def screenshot(session: XSession, path: Path) -> bool:
    """Save the whole screen as PNG (needs ImageMagick's import); False when unavailable."""
    tool = shutil.which("import")
    if tool is None:
        return False
    return subprocess.run([tool, "-window", "root", str(path)], env=session.env,
                          capture_output=True).returncode == 0
