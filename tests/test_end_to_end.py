"""Real input on a real X server becomes the right dataset: agent, collector and builder as separate processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deskcorder._xsession import XSession
from deskcorder.dataset import read_table

from .helpers import enrol_in, enrolment_token, start_agent, start_collector

pytestmark = pytest.mark.x11


def test_scripted_work_session_becomes_the_expected_actions(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    enrol_in(data_dir, "e2e-person")  # an employee, a policy allowing every app, their consent
    with start_collector(data_dir) as url, XSession() as xs:
        notes = xs.open_window([sys.executable, "-m", "deskcorder._demo_editor", str(tmp_path / "notes.txt")],
                               "Notes")
        term = xs.open_window(["xterm", "-class", "E2ETerm", "-title", "e2e terminal",
                               "-geometry", "80x24+700+100", "-e", "cat"], "E2ETerm")
        xs.activate(notes)
        token = enrolment_token(data_dir, "e2e-person")  # `deskcorder device token --employee e2e-person`
        with start_agent(url, tmp_path / "agent", xs.env, "--enrol-token", token) as agent:
            x = xs.xdotool
            x("mousemove", "300", "200")
            x("click", "1")
            time.sleep(0.1)
            x("type", "--delay", "30", "Hello, Wrp")
            x("key", "BackSpace", "BackSpace")
            x("type", "--delay", "30", "orld! 42")
            time.sleep(0.1)
            x("mousemove", "200", "150")
            x("mousedown", "1")
            for step in range(1, 11):
                x("mousemove", str(200 + 20 * step), str(150 + step // 2))
            x("mouseup", "1")
            time.sleep(0.1)
            x("mousemove", "500", "300")
            for _ in range(3):
                x("click", "5")
            time.sleep(0.7)  # longer than the scroll merge window: the scrolls end here
            x("key", "ctrl+s")
            time.sleep(0.2)
            xs.activate(term)
            time.sleep(0.3)
            x("type", "--delay", "30", "ls")
            x("key", "Return")
            time.sleep(0.5)
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(timeout=20) == 0

    out = tmp_path / "dataset"
    subprocess.run([sys.executable, "-m", "deskcorder", "dataset", "build", "--data-dir", str(data_dir),
                    "--out", str(out)], check=True, capture_output=True)
    actions = read_table(out, "actions").to_pylist()
    got = [(a["kind"], a["app_class"]) for a in actions]
    assert got == [
        ("click", "Notes"),
        ("type", "Notes"),
        ("drag", "Notes"),
        ("scroll", "Notes"),
        ("hotkey", "Notes"),
        ("type", "E2ETerm"),
        ("key", "E2ETerm"),
    ], got
    click, typed, drag, scroll, hotkey, typed2, enter = actions
    assert (click["button"], click["x"], click["y"]) == ("left", 300, 200)
    assert typed["text"] == "Hello, World! 42"
    assert (drag["x"], drag["y"], drag["x2"], drag["y2"]) == (200, 150, 400, 155)
    assert (scroll["dy"], scroll["x"], scroll["y"]) == (-3, 500, 300)
    assert hotkey["keys"] == "ctrl+s"
    assert typed2["text"] == "ls" and typed2["window_title"] == "e2e terminal"
    assert enter["keys"] == "enter"
    assert "Hello, World! 42" in (tmp_path / "notes.txt").read_text()  # the app really got the input
    (split,) = {a["split"] for a in actions}  # one person: one split
    lines = [json.loads(line) for line in (out / "data" / "actions" / f"{split}-00000.jsonl").read_text().splitlines()]
    assert [a["kind"] for a in lines] == [a["kind"] for a in actions]
