"""Real input on a real X server (Xvfb + openbox, xdotool and XTest) is recorded exactly.

The agent runs in this process against an unreachable collector, so every
event stays in the spool, which the tests reopen from disk and read.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from deskcorder._xsession import XSession
from deskcorder.capture import Agent, AgentConfig, FixedStatus, Spool
from deskcorder.capture._x11_focus import FocusTracker

from .capture_rig import xs  # noqa: F401  (a fixture: Xvfb + openbox, $DISPLAY set for pynput)
from .helpers import ALLOW_ALL_POLICY

pytestmark = pytest.mark.x11

FLUSH_S = 0.2


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@contextlib.contextmanager
def recording(state_dir: Path, **config: Any) -> Iterator[Agent]:
    # Capture mechanics, not consent: a fixed "allowed, every app" status stands in for the collector's.
    agent = Agent(AgentConfig(server_url=closed_port_url(), state_dir=state_dir, **config),
                  consent=FixedStatus(ALLOW_ALL_POLICY))
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def spooled(state_dir: Path) -> list[dict[str, Any]]:
    spool = Spool(state_dir / "spool.db")
    try:
        return spool.read_events().to_pylist()
    finally:
        spool.close()


def assert_well_formed(events: list[dict[str, Any]]) -> None:
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert len({e["session_id"] for e in events}) == 1
    t = [e["t_mono_ns"] for e in events]
    assert all(a <= b for a, b in zip(t, t[1:])), "t_mono_ns runs backwards"


def keys(events: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(e["kind"], e["key"], e["char"]) for e in events if e["kind"] in ("key_down", "key_up")]


def terminal(xs: XSession, wm_class: str, title: str, geometry: str = "80x24+0+0") -> int:
    return xs.open_window(["xterm", "-class", wm_class, "-title", title, "-geometry", geometry, "-e", "cat"],
                          wm_class)


def test_typed_text_is_recorded_key_by_key_with_contiguous_seq(xs: XSession, tmp_path: Path) -> None:
    xs.activate(terminal(xs, "KeysTerm", "keys"))
    with recording(tmp_path) as agent:
        xs.xdotool("type", "--delay", "15", "Hi, Bo!")
        xs.xdotool("key", "BackSpace")
        xs.xdotool("type", "--delay", "15", "?")
        time.sleep(FLUSH_S * 2)
        assert agent.stats()["spooled"] == agent.stats()["captured"]
    events = spooled(tmp_path)
    assert_well_formed(events)
    assert events[0]["kind"] == "focus" and events[0]["app_class"] == "KeysTerm"
    # xdotool releases Shift before the shifted key, so that key's release is reported unshifted.
    shifted = lambda down, up: [("key_down", "shift", None), ("key_down", down, down),  # noqa: E731
                                ("key_up", "shift", None), ("key_up", up, up)]
    plain = lambda c: [("key_down", c, c), ("key_up", c, c)]  # noqa: E731
    expected = (shifted("H", "h") + plain("i") + plain(",") + [("key_down", "space", " "), ("key_up", "space", " ")]
                + shifted("B", "b") + plain("o") + shifted("!", "1")
                + [("key_down", "backspace", None), ("key_up", "backspace", None)] + shifted("?", "/"))
    assert keys(events) == expected


def test_clicks_drags_and_scrolls_are_recorded_where_they_happened(xs: XSession, tmp_path: Path) -> None:
    xs.activate(terminal(xs, "MouseTerm", "mouse"))
    with recording(tmp_path):
        xs.xdotool("mousemove", "120", "90", "click", "1")
        xs.xdotool("mousemove", "150", "100", "mousedown", "1", "mousemove", "200", "130",
                   "mousemove", "260", "170", "mouseup", "1")
        xs.xdotool("mousemove", "300", "200", "click", "3")
        xs.xdotool("mousemove", "310", "210", "click", "4", "click", "5", "click", "5")
        time.sleep(FLUSH_S * 2)
    events = spooled(tmp_path)
    assert_well_formed(events)
    buttons = [(e["kind"], e["button"], e["x"], e["y"]) for e in events if e["kind"].startswith("button")]
    expected = [("button_down", "left", 120, 90), ("button_up", "left", 120, 90),
                ("button_down", "left", 150, 100), ("button_up", "left", 260, 170),
                ("button_down", "right", 300, 200), ("button_up", "right", 300, 200)]
    assert len(buttons) == len(expected), buttons
    for got, want in zip(buttons, expected):
        assert got[:2] == want[:2] and abs(got[2] - want[2]) <= 1 and abs(got[3] - want[3]) <= 1, (got, want)
    scrolls = [(e["dx"], e["dy"], e["x"], e["y"]) for e in events if e["kind"] == "scroll"]
    assert scrolls == [(0, 1, 310, 210), (0, -1, 310, 210), (0, -1, 310, 210)]  # button 4 up, 5 down
    # The pointer's path during the drag is kept: the move to the release point precedes the release.
    release = next(i for i, e in enumerate(events) if e["kind"] == "button_up" and e["x"] == 260)
    assert (events[release - 1]["kind"], events[release - 1]["x"], events[release - 1]["y"]) == ("move", 260, 170)


def test_a_flood_of_moves_is_coalesced_to_move_hz_and_every_click_survives(xs: XSession, tmp_path: Path) -> None:
    xs.activate(terminal(xs, "FloodTerm", "flood"))
    argv: list[str] = []
    clicks = []
    for i in range(2000):
        argv += ["mousemove", str(20 + i % 600), str(20 + (i * 7) % 400)]
        if i % 250 == 125:
            argv += ["click", "1"]
            clicks.append((20 + i % 600, 20 + (i * 7) % 400))
    with recording(tmp_path) as agent:
        start = time.monotonic()
        xs.xdotool(*argv)
        took = time.monotonic() - start
        time.sleep(FLUSH_S * 2)
        stats = agent.stats()
    # The flood must outrun move_hz many times over for coalescing to be what is tested (a loaded
    # 2-core machine delivers 2000 moves in ~1 s, i.e. ~30x the 60 Hz slots).
    assert 2000 / took >= 10 * 60, f"xdotool needed {took:.2f} s for 2000 moves; the flood is not a flood"
    events = spooled(tmp_path)
    assert_well_formed(events)
    moves = [e for e in events if e["kind"] == "move"]
    span_s = (moves[-1]["t_mono_ns"] - moves[0]["t_mono_ns"]) / 1e9
    # One move per 1/60 s slot, plus one extra per click: the pending move is written before each click.
    assert len(moves) <= 60 * span_s + 2 + 2 * len(clicks), (len(moves), span_s)
    assert stats["coalesced"] >= 2000 - len(moves) - 5
    downs = [(e["x"], e["y"]) for e in events if e["kind"] == "button_down"]
    ups = [(e["x"], e["y"]) for e in events if e["kind"] == "button_up"]
    assert downs == clicks and ups == clicks
    assert (moves[-1]["x"], moves[-1]["y"]) == (20 + 1999 % 600, 20 + (1999 * 7) % 400)  # the final position is kept
    print(f"\n2000 moves in {took:.2f} s -> {len(moves)} moves recorded over {span_s:.2f} s, "
          f"{len(clicks)} clicks kept")


def test_focus_changes_precede_the_keys_typed_in_the_new_window(xs: XSession, tmp_path: Path) -> None:
    first = terminal(xs, "FocusOne", "first window", "40x10+0+0")
    second = terminal(xs, "FocusTwo", "second window", "40x10+400+300")
    xs.activate(first)
    with recording(tmp_path):
        for window, text in ((second, "b"), (first, "a"), (second, "c")):
            xs.activate(window)
            xs.xdotool("type", "--delay", "15", text)
        xs.xdotool("set_window", "--name", "renamed", str(second))
        time.sleep(FLUSH_S * 2)
    events = spooled(tmp_path)
    assert_well_formed(events)
    story = [(e["app_class"], e["window_title"], e["app_process"]) if e["kind"] == "focus" else e["key"]
             for e in events if e["kind"] in ("focus", "key_down")]
    one, two = ("FocusOne", "first window", "xterm"), ("FocusTwo", "second window", "xterm")
    assert story == [one, two, "b", one, "a", two, "c", ("FocusTwo", "renamed", "xterm")]


def test_closing_the_active_window_is_recorded_without_crashing(xs: XSession, tmp_path: Path) -> None:
    survivor = terminal(xs, "Survivor", "survivor", "40x10+0+0")
    doomed = terminal(xs, "Doomed", "doomed", "40x10+400+300")
    xs.activate(doomed)
    with recording(tmp_path) as agent:
        xs.xdotool("windowkill", str(doomed))
        time.sleep(0.3)
        xs.activate(survivor)
        xs.xdotool("type", "x")
        time.sleep(FLUSH_S * 2)
        assert agent.failure is None
    events = spooled(tmp_path)
    focus = [e["app_class"] for e in events if e["kind"] == "focus"]
    assert focus[0] == "Doomed" and focus[-1] == "Survivor"
    assert keys(events)[-2:] == [("key_down", "x", "x"), ("key_up", "x", "x")]


def test_a_window_that_vanished_is_described_as_unknown(xs: XSession) -> None:
    submitted: list[Any] = []

    class Sink:
        def submit(self, event: Any) -> bool:
            submitted.append(event)
            return True

        def record_lost(self, reason: str, quantity: int = 1) -> None: ...

        def fail(self, error: BaseException) -> None:
            raise AssertionError(error)

    tracker = FocusTracker(Sink())
    tracker.start()
    try:
        assert tracker._describe(0x3FFFFFF) == (None, None, None)  # an id no window has: BadWindow
    finally:
        tracker.stop()
    assert submitted and submitted[0].kind.value == "focus"


def test_pause_records_markers_and_nothing_in_between(xs: XSession, tmp_path: Path) -> None:
    xs.activate(terminal(xs, "PauseTerm", "pause"))
    with recording(tmp_path) as agent:
        xs.xdotool("type", "a")
        agent.pause("user clicked pause")
        xs.xdotool("type", "--delay", "10", "secret")
        xs.xdotool("mousemove", "50", "60", "click", "1")
        agent.resume("user clicked resume")
        xs.xdotool("type", "b")
        time.sleep(FLUSH_S * 2)
    events = spooled(tmp_path)
    assert_well_formed(events)
    story = [e["kind"] if e["kind"] != "key_down" else e["key"] for e in events if e["kind"] != "key_up"]
    assert story == ["focus", "a", "pause", "resume", "focus", "b"]
    assert events[[e["kind"] for e in events].index("pause")]["reason"] == "user clicked pause"


def test_key_hold_times_match_the_injected_holds(xs: XSession, tmp_path: Path) -> None:
    import Xlib.display
    import Xlib.X
    import Xlib.XK
    from Xlib.ext import xtest

    xs.activate(terminal(xs, "HoldTerm", "hold"))
    display = Xlib.display.Display(xs.display)
    keycode = display.keysym_to_keycode(Xlib.XK.string_to_keysym("j"))
    holds_ms = [30 + 270 * i / 19 for i in range(20)]
    injected = []

    def fake(kind: int) -> int:
        # The middle of the request's round trip: the server handled it somewhere in there.
        before = time.monotonic_ns()
        xtest.fake_input(display, kind, keycode)
        display.sync()
        return (before + time.monotonic_ns()) // 2

    with recording(tmp_path):
        for hold in holds_ms:
            down = fake(Xlib.X.KeyPress)
            time.sleep(hold / 1000)
            injected.append(fake(Xlib.X.KeyRelease) - down)
            time.sleep(0.02)
        time.sleep(FLUSH_S * 2)
    display.close()
    events = [e for e in spooled(tmp_path) if e["kind"] in ("key_down", "key_up")]
    assert [e["kind"] for e in events] == ["key_down", "key_up"] * len(holds_ms)
    recorded = [up["t_mono_ns"] - down["t_mono_ns"] for down, up in zip(events[::2], events[1::2])]
    errors_ms = [abs(r - i) / 1e6 for r, i in zip(recorded, injected)]
    median = statistics.median(errors_ms)
    print(f"\nhold time error over {len(errors_ms)} holds of 30-300 ms: median {median:.2f} ms, "
          f"max {max(errors_ms):.2f} ms")
    assert median < 5.0


def test_focus_is_polled_when_the_window_manager_lacks_ewmh(tmp_path: Path) -> None:
    with XSession(window_manager=False) as bare:
        before = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = bare.display or ""
        try:
            one = bare.open_window(["xterm", "-class", "BareOne", "-title", "bare one", "-e", "cat"], "BareOne")
            two = bare.open_window(["xterm", "-class", "BareTwo", "-title", "bare two", "-e", "cat"], "BareTwo")
            with recording(tmp_path):
                for window in (one, two):
                    bare.xdotool("windowfocus", "--sync", str(window))
                    time.sleep(0.5)  # a few polls
                bare.xdotool("type", "z")
                time.sleep(FLUSH_S * 2)
        finally:
            os.environ["DISPLAY"] = before or ""
    events = spooled(tmp_path)
    focus = [e["app_class"] for e in events if e["kind"] == "focus"]
    assert focus[-2:] == ["BareOne", "BareTwo"]
    assert keys(events)[-2:] == [("key_down", "z", "z"), ("key_up", "z", "z")]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-s"]))
