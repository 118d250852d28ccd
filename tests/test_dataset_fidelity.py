"""Timings and paths injected on a real X server come out of an internal dataset build as they went in.

One recorded session serves every test here: Xvfb + openbox, a `deskcorder
serve` collector and a `deskcorder agent` process, each real; XTest (from this
process, through python-xlib) presses keys with known hold and flight times
and drags the pointer through known points. Then `deskcorder dataset build
--internal` (raw timings; a release anonymises them) writes the dataset the
tests read back. Injection times are the middle of each request's round trip
to the server, as in tests/test_capture_x11.py's hold-time test.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from deskcorder._xsession import XSession
from deskcorder.dataset import read_table
from deskcorder.store import EventStore

from .helpers import READ, enrol_in, enrolment_token, start_agent, start_collector

pytestmark = pytest.mark.x11

# An unusual screen, so a size that merely looks plausible (a default, the connection's setup data) fails.
SCREEN = (1152, 720)
TERMINAL_GEOMETRY = "90x30+40+30"
LETTERS = "qwertyuiopasdfghjklzxcvb"
# (hold, gap to the next press's down) in ms; a negative gap is rollover: the next key goes down first.
PRESSES_MS = [(30 + 7 * i, (-25 if i % 6 == 5 else 40 + 11 * i)) for i in range(len(LETTERS))]
# A drag along an arc, one point every 40 ms: more than the agent's 60 Hz move slot, so none is coalesced.
DRAG_START = (150, 150)
DRAG_POINTS = [(150 + round(250 * math.sin(a / 10)), 150 + round(120 * (1 - math.cos(a / 10)))) for a in range(1, 16)]
MOVE_SPACING_S = 0.04


@dataclasses.dataclass
class Recording:
    presses: list[tuple[int, int]]  # (down, up) of each key, monotonic ns, in order of going down
    drag: list[tuple[int, int, int]]  # (t, x, y) injected: the press, every move, the release
    window_bounds: tuple[int, int, int, int]  # the terminal's client area (xwininfo), root coordinates
    moved_bounds: tuple[int, int, int, int]  # the same after the window was moved, at the end
    stored: list[dict[str, Any]]
    dataset: Path
    data_dir: Path


class Injector:
    """XTest input from this process, each event stamped at the middle of its round trip to the server."""

    def __init__(self, display_name: str):
        import Xlib.display

        self.display = Xlib.display.Display(display_name)

    def close(self) -> None:
        self.display.close()

    def _fake(self, kind: int, detail: int = 0, **where: int) -> int:
        from Xlib.ext import xtest

        before = time.monotonic_ns()
        xtest.fake_input(self.display, kind, detail, **where)
        self.display.sync()
        return (before + time.monotonic_ns()) // 2

    def keycode(self, letter: str) -> int:
        import Xlib.XK

        return self.display.keysym_to_keycode(Xlib.XK.string_to_keysym(letter))

    def key(self, keycode: int, down: bool) -> int:
        import Xlib.X

        return self._fake(Xlib.X.KeyPress if down else Xlib.X.KeyRelease, keycode)

    def move(self, x: int, y: int) -> int:
        import Xlib.X

        return self._fake(Xlib.X.MotionNotify, x=x, y=y)

    def button(self, down: bool) -> int:
        import Xlib.X

        return self._fake(Xlib.X.ButtonPress if down else Xlib.X.ButtonRelease, 1)


def type_with_known_timings(inject: Injector) -> list[tuple[int, int]]:
    """Press LETTERS with PRESSES_MS's holds and gaps; returns each press's measured (down, up)."""
    plan: list[tuple[float, int, bool]] = []  # (ms from the start, press index, down?)
    t = 0.0
    for i, (hold, gap) in enumerate(PRESSES_MS):
        plan += [(t, i, True), (t + hold, i, False)]
        t += hold + gap
    plan.sort()
    codes = [inject.keycode(letter) for letter in LETTERS]
    stamps: dict[tuple[int, bool], int] = {}
    start = time.monotonic_ns()
    for at_ms, i, down in plan:
        time.sleep(max(0.0, (start + at_ms * 1e6 - time.monotonic_ns()) / 1e9))
        stamps[i, down] = inject.key(codes[i], down)
    return [(stamps[i, True], stamps[i, False]) for i in range(len(LETTERS))]


def drag_through_known_points(inject: Injector) -> list[tuple[int, int, int]]:
    inject.move(*DRAG_START)
    time.sleep(0.1)
    path = [(inject.button(True), *DRAG_START)]
    for x, y in DRAG_POINTS:
        time.sleep(MOVE_SPACING_S)
        path.append((inject.move(x, y), x, y))
    time.sleep(MOVE_SPACING_S)
    path.append((inject.button(False), *DRAG_POINTS[-1]))
    return path


def client_area(xs: XSession, window: int) -> tuple[int, int, int, int]:
    """The window's position (absolute upper-left) and size as xwininfo, another X client, reports them."""
    out = subprocess.run(["xwininfo", "-id", str(window)], env=xs.env, capture_output=True, text=True,
                         check=True).stdout
    fields = dict(line.strip().split(":", 1) for line in out.splitlines() if ":" in line and "xwininfo" not in line)
    return tuple(int(fields[name]) for name in ("Absolute upper-left X", "Absolute upper-left Y", "Width",
                                                "Height"))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    tmp = tmp_path_factory.mktemp("fidelity")
    data_dir = tmp / "data"
    enrol_in(data_dir, "fidelity-person")
    with start_collector(data_dir) as url, XSession(width=SCREEN[0], height=SCREEN[1]) as xs:
        term = xs.open_window(["xterm", "-class", "FidelityTerm", "-title", "fidelity", "-geometry",
                               TERMINAL_GEOMETRY, "-e", "cat"], "FidelityTerm")
        xs.activate(term)
        bounds = client_area(xs, term)
        inject = Injector(xs.display or "")
        token = enrolment_token(data_dir, "fidelity-person")
        try:
            with start_agent(url, tmp / "agent", xs.env, "--enrol-token", token) as agent:
                presses = type_with_known_timings(inject)
                time.sleep(0.3)
                drag = drag_through_known_points(inject)
                time.sleep(0.3)
                xs.xdotool("windowmove", "--sync", str(term), "300", "200")
                time.sleep(0.5)  # the tracker waits for the window to settle
                moved = client_area(xs, term)
                agent.send_signal(signal.SIGTERM)
                assert agent.wait(timeout=20) == 0
        finally:
            inject.close()
    with EventStore(data_dir) as store:
        stored = sorted(store.read_events(**READ).to_pylist(), key=lambda e: e["seq"])
    out = tmp / "dataset"
    subprocess.run([sys.executable, "-m", "deskcorder", "dataset", "build", "--internal", "--data-dir",
                    str(data_dir), "--out", str(out)], check=True, capture_output=True)
    yield Recording(presses, drag, bounds, moved, stored, out, data_dir)


def median_error_ms(recorded: list[float | None], injected: list[float]) -> float:
    assert None not in recorded, recorded
    return statistics.median(abs(r - i) for r, i in zip(recorded, injected))  # type: ignore[operator]


def test_an_internal_build_recovers_injected_hold_and_flight_times_within_5_ms(recording: Recording) -> None:
    actions = read_table(recording.dataset, "actions").to_pylist()
    (typed,) = [a for a in actions if a["kind"] == "type"]
    rows = sorted((k for k in read_table(recording.dataset, "keystrokes").to_pylist()
                   if k["action_id"] == typed["action_id"]), key=lambda k: k["position"])
    assert len(rows) == len(LETTERS)
    presses = recording.presses
    hold = [(up - down) / 1e6 for down, up in presses]
    dd = [(b[0] - a[0]) / 1e6 for a, b in zip(presses, presses[1:])]
    ud = [(b[0] - a[1]) / 1e6 for a, b in zip(presses, presses[1:])]
    errors = {"hold": median_error_ms([k["hold_ms"] for k in rows], hold),
              "down-down": median_error_ms([k["dd_ms"] for k in rows[1:]], dd),
              "up-down": median_error_ms([k["ud_ms"] for k in rows[1:]], ud)}
    print("\nmedian error over", len(rows), "presses:", ", ".join(f"{n} {e:.2f} ms" for n, e in errors.items()))
    assert all(e < 5.0 for e in errors.values()), errors
    assert rows[0]["dd_ms"] is None and rows[0]["ud_ms"] is None
    # The overlapping presses (negative gaps) are rollover, and only they.
    assert [k["rollover"] for k in rows] == [gap < 0 for _, gap in PRESSES_MS[:-1]] + [False]


def test_a_drag_path_passes_through_every_injected_point(recording: Recording) -> None:
    actions = read_table(recording.dataset, "actions").to_pylist()
    (drag,) = [a for a in actions if a["kind"] == "drag"]
    path = sorted((p for p in read_table(recording.dataset, "pointer").to_pylist()
                   if p["action_id"] == drag["action_id"] and p["path_kind"] == "drag"), key=lambda p: p["sample"])
    injected = recording.drag
    assert len(path) == len(injected), [(p["x"], p["y"]) for p in path]
    distances = [math.dist((p["x"], p["y"]), (x, y)) for p, (_, x, y) in zip(path, injected)]
    t0 = injected[0][0]
    time_errors = [abs(p["t_ms"] - (t - t0) / 1e6) for p, (t, _, _) in zip(path, injected)]
    print(f"\ndrag of {len(path)} samples: max distance {max(distances):.1f} px, "
          f"median time error {statistics.median(time_errors):.2f} ms")
    assert max(distances) <= 2.0, list(zip(path, injected))
    assert statistics.median(time_errors) < 5.0


def test_focus_events_carry_the_screen_size_and_the_window_bounds_and_follow_a_move(recording: Recording) -> None:
    focus = [e for e in recording.stored if e["kind"] == "focus"]
    assert all(e["app_class"] == "FidelityTerm" for e in focus)
    assert {(e["screen_width"], e["screen_height"]) for e in focus} == {SCREEN}
    bounds = [(e["window_x"], e["window_y"], e["window_width"], e["window_height"]) for e in focus]
    assert recording.moved_bounds != recording.window_bounds
    assert bounds == [recording.window_bounds, recording.moved_bounds]  # one event for the move, not one per step


def test_every_pointer_row_carries_the_screen_size_in_a_local_and_a_dask_build(recording: Recording,
                                                                               tmp_path: Path) -> None:
    pointer = read_table(recording.dataset, "pointer").to_pylist()
    assert pointer and {(p["screen_width"], p["screen_height"]) for p in pointer} == {SCREEN}
    # Workers get only the columns shipped to them: the screen size must be among them.
    subprocess.run([sys.executable, "-m", "deskcorder", "dataset", "build", "--internal", "--engine", "dask",
                    "--workers", "1", "--data-dir", str(recording.data_dir), "--out", str(tmp_path / "dask")],
                   check=True, capture_output=True)
    assert read_table(tmp_path / "dask", "pointer").to_pylist() == pointer


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-s"]))
