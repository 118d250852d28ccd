"""Scope at the source: out-of-scope apps, password prompts, pauses and off-hours leave only a marker.

Real X server, real collector, the agent in this process. Each test types
distinct letters inside and outside the scope, then reads what the collector
stored (and the spool's raw bytes) back from disk.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from deskcorder._xsession import XSession
from deskcorder.capture import RawEvent, RecordingStatus, is_password_prompt
from deskcorder.capture._gate import Gate
from deskcorder.events import EventKind
from deskcorder.policy import parse_policy

from .capture_rig import ALLOW_ALL, FLUSH_S, Desk, leaks, spool_bytes, story, terminal, wait_for
from .capture_rig import xs  # noqa: F401  (a fixture)
from .helpers import start_collector

pytestmark = pytest.mark.x11

@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    data_dir = tmp_path_factory.mktemp("scope") / "data"
    with start_collector(data_dir) as url:
        yield Desk(data_dir, url)


def employee_under(desk: Desk, handle: str, policy: str) -> str:
    desk.set_policy(policy)
    desk.add_employee(handle)
    desk.consent(handle, "give")
    return handle


def test_an_app_outside_the_allowlist_is_never_recorded_only_a_marker(xs: XSession, desk: Desk,
                                                                       tmp_path: Path) -> None:
    handle = employee_under(desk, "scope-apps", '[[apps]]\nwm_class = "ScopeIn"\n')
    inside = terminal(xs, "ScopeIn", "project notes")
    outside = terminal(xs, "ScopeOut", "payroll-zqxv", "60x10+500+300")
    xs.activate(inside)
    with desk.agent(tmp_path, handle) as agent:
        wait_for(lambda: agent.stats()["recording"], "recording did not start in the allowed app")
        xs.xdotool("type", "--delay", "10", "abc")
        xs.activate(outside)
        wait_for(lambda: agent.stats()["gate_reason"] == "out_of_scope", "the agent did not leave the scope")
        xs.xdotool("type", "--delay", "10", "xyz")
        xs.xdotool("mousemove", "600", "350", "click", "1")
        xs.activate(inside)
        wait_for(lambda: agent.stats()["recording"], "recording did not resume in the allowed app")
        xs.xdotool("type", "--delay", "10", "def")
        time.sleep(FLUSH_S * 3)
        raw_while_running = spool_bytes(tmp_path)

    events = desk.stored(agent.device_id)
    assert story(events) == ["ScopeIn", "a", "b", "c", ("pause", "out_of_scope"), ("resume", "in_scope"), "ScopeIn",
                             "d", "e", "f"]
    assert not leaks(events, "ScopeOut", "payroll"), "the out-of-scope window's name reached the store"
    pause, resume = (e for e in events if e["kind"] in ("pause", "resume"))
    between = [e for e in events if pause["seq"] < e["seq"] < resume["seq"]]
    assert between == [] and resume["t_mono_ns"] > pause["t_mono_ns"]  # the gap is a duration, nothing else
    for raw in (raw_while_running, spool_bytes(tmp_path)):
        assert b"ScopeOut" not in raw and b"payroll-zqxv" not in raw, "the out-of-scope window reached the disk"


def test_password_prompts_are_never_recorded_whatever_the_policy(xs: XSession, desk: Desk, tmp_path: Path) -> None:
    handle = employee_under(desk, "scope-password", ALLOW_ALL)
    notes = terminal(xs, "PwNotes", "todo list")
    prompt = terminal(xs, "PwPrompt", "[sudo] password for alice", "60x10+500+300")
    xs.activate(notes)
    with desk.agent(tmp_path, handle) as agent:
        wait_for(lambda: agent.stats()["recording"], "recording did not start")
        xs.xdotool("type", "a")
        xs.activate(prompt)
        wait_for(lambda: agent.stats()["gate_reason"] == "password_prompt", "the sudo prompt was not recognised")
        xs.xdotool("type", "--delay", "10", "xyz")
        xs.activate(notes)
        wait_for(lambda: agent.stats()["recording"], "recording did not resume")
        xs.xdotool("type", "b")
        # The window in front turning into a prompt (its title changes) counts too.
        xs.xdotool("set_window", "--name", "Enter passphrase for key id_ed25519", str(notes))
        wait_for(lambda: agent.stats()["gate_reason"] == "password_prompt", "the passphrase title was not seen")
        xs.xdotool("type", "--delay", "10", "uvw")
        xs.xdotool("set_window", "--name", "todo list", str(notes))
        wait_for(lambda: agent.stats()["recording"], "recording did not resume after the prompt")
        xs.xdotool("type", "c")
        time.sleep(FLUSH_S * 3)

    events = desk.stored(agent.device_id)
    prompt_gap = [("pause", "password_prompt"), ("resume", "in_scope"), "PwNotes"]
    assert story(events) == ["PwNotes", "a", *prompt_gap, "b", *prompt_gap, "c"]
    assert not leaks(events, "PwPrompt", "sudo", "passphrase")
    assert b"passphrase" not in spool_bytes(tmp_path) and b"PwPrompt" not in spool_bytes(tmp_path)


def test_the_pause_hotkey_records_markers_and_never_its_own_keys(xs: XSession, desk: Desk, tmp_path: Path) -> None:
    handle = employee_under(desk, "scope-hotkey", ALLOW_ALL)
    xs.activate(terminal(xs, "HotkeyTerm", "hotkey"))
    with desk.agent(tmp_path, handle) as agent:
        wait_for(lambda: agent.stats()["recording"], "recording did not start")
        xs.xdotool("type", "a")
        xs.xdotool("key", "ctrl+alt+shift+p")
        wait_for(lambda: agent.stats()["paused"], "the hotkey did not pause")
        xs.xdotool("type", "--delay", "10", "xyz")
        xs.xdotool("mousemove", "100", "100", "click", "1")
        xs.xdotool("key", "ctrl+alt+shift+p")
        wait_for(lambda: agent.stats()["recording"], "the hotkey did not resume")
        xs.xdotool("type", "b")
        xs.xdotool("key", "ctrl+alt+shift+x")  # the same modifiers with another key: recorded, in order
        time.sleep(FLUSH_S * 3)

    events = desk.stored(agent.device_id)
    assert [e["seq"] for e in events] == list(range(len(events)))
    t = [e["t_mono_ns"] for e in events]
    assert t == sorted(t), "held-back modifier presses were written out of order"
    assert story(events)[:6] == ["HotkeyTerm", "a", ("pause", "paused_by_user"), ("resume", "resumed_by_user"),
                                 "HotkeyTerm", "b"]
    keys = [(e["kind"], e["key"]) for e in events if e["kind"] in ("key_down", "key_up")]
    combo = keys[4:]  # after a and b, down and up
    assert keys[:4] == [("key_down", "a"), ("key_up", "a"), ("key_down", "b"), ("key_up", "b")], keys
    assert [k for k in combo if k[0] == "key_down"] == [("key_down", "ctrl"), ("key_down", "alt"),
                                                        ("key_down", "shift"), ("key_down", "X")], combo
    assert len(combo) == 8 and all(kind == "key_up" for kind, _ in combo[4:]), combo


def test_cli_pause_and_resume_reach_the_running_agent(xs: XSession, desk: Desk, tmp_path: Path) -> None:
    handle = employee_under(desk, "scope-cli", ALLOW_ALL)
    state_dir = tmp_path / ("long-state-directory-" * 4) / "agent"  # a socket path over the 107-byte limit
    xs.activate(terminal(xs, "CliTerm", "cli"))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "deskcorder", "agent", *args, "--state-dir", str(state_dir)],
                              capture_output=True, text=True, timeout=30, env={**os.environ, "COLUMNS": "200"})

    with desk.agent(state_dir, handle) as agent:
        wait_for(lambda: agent.stats()["recording"], "recording did not start")
        xs.xdotool("type", "a")
        paused = cli("pause")
        assert paused.returncode == 0 and paused.stdout.startswith("paused"), paused
        assert agent.stats()["recording"] is False  # the answer came after the agent stopped recording
        xs.xdotool("type", "--delay", "10", "xyz")
        status = cli("status")
        assert status.returncode == 0 and "not recording (paused_by_user)" in status.stdout, status
        assert "paused by you" in status.stdout and agent.session_id in status.stdout
        resumed = cli("resume")
        assert resumed.returncode == 0 and resumed.stdout.strip() == "resumed: recording", resumed
        xs.xdotool("type", "b")
        time.sleep(FLUSH_S * 3)

    assert story(desk.stored(agent.device_id)) == ["CliTerm", "a", ("pause", "paused_by_user"),
                                                   ("resume", "resumed_by_user"), "CliTerm", "b"]
    gone = cli("status")
    assert gone.returncode == 1 and "no agent is running" in gone.stderr, gone


def test_a_pause_survives_an_agent_restart(xs: XSession, desk: Desk, tmp_path: Path) -> None:
    handle = employee_under(desk, "scope-restart", ALLOW_ALL)
    xs.activate(terminal(xs, "RestartTerm", "restart"))
    with desk.agent(tmp_path, handle) as first:
        wait_for(lambda: first.stats()["recording"], "recording did not start")
        xs.xdotool("key", "ctrl+alt+shift+p")
        wait_for(lambda: first.stats()["paused"], "the hotkey did not pause")
    with desk.agent(tmp_path, handle) as second:
        assert (second.stats()["recording"], second.stats()["gate_reason"]) == (False, "paused_by_user")
        xs.xdotool("type", "--delay", "10", "xyz")
        second.resume()
        xs.xdotool("type", "b")
        time.sleep(FLUSH_S * 3)
    assert not (tmp_path / "paused").exists()
    sessions = {}
    for e in desk.stored(second.device_id):
        sessions.setdefault(e["session_id"], []).append(e)
    assert story(sessions[first.session_id]) == ["RestartTerm", ("pause", "paused_by_user")]
    assert story(sessions[second.session_id]) == ["RestartTerm", "b"]  # it never recorded before the resume


def test_outside_working_hours_nothing_is_recorded(xs: XSession, desk: Desk, tmp_path: Path) -> None:
    far = (dt.datetime.now(dt.timezone.utc).hour + 12) % 24  # half a day away from now, every day
    handle = employee_under(desk, "scope-hours", ALLOW_ALL + f'[hours]\ndays = ["mon", "tue", "wed", "thu", "fri", '
                                                           f'"sat", "sun"]\nstart = "{far:02d}:00"\n'
                                                           f'end = "{far:02d}:59"\ntimezone = "UTC"\n')
    xs.activate(terminal(xs, "HoursTerm", "hours"))
    with desk.agent(tmp_path, handle) as agent:
        assert agent.stats()["gate_reason"] == "outside_hours"
        xs.xdotool("type", "--delay", "10", "xyz")
        xs.xdotool("mousemove", "200", "200", "click", "1")
        time.sleep(FLUSH_S * 3)
        assert agent.stats()["captured"] == 0
    assert desk.stored(agent.device_id) == []
    assert b"HoursTerm" not in spool_bytes(tmp_path)


def test_working_hours_end_and_start_again_with_markers() -> None:
    """The gate alone, on a synthetic clock: the minute the hours end, a PAUSE; the next morning, a RESUME."""
    policy = parse_policy('version = 1\n[[apps]]\ntitle_include = [".*"]\n'
                          '[hours]\ndays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
                          'start = "09:00"\nend = "17:00"\ntimezone = "UTC"\n')

    def at(hhmmss: str, day: int = 1) -> int:
        when = dt.datetime.fromisoformat(f"2026-03-0{day}T{hhmmss}+00:00")
        return int(when.timestamp()) * 10**9

    gate, out = Gate(), []
    gate.set_status(RecordingStatus(True, None, "", policy, 1), 0, at("16:59:00"), out)
    gate.admit((1, at("16:59:10"), RawEvent(EventKind.FOCUS, app_class="Notes", window_title="notes")), out)
    gate.admit((2, at("17:00:59"), RawEvent(EventKind.KEY_DOWN, key="a", char="a")), out)
    gate.admit((3, at("17:01:00"), RawEvent(EventKind.KEY_DOWN, key="b", char="b")), out)
    gate.tick(4, at("23:00:00"), out)
    gate.admit((5, at("08:59:59", day=2), RawEvent(EventKind.KEY_DOWN, key="c", char="c")), out)
    gate.tick(6, at("09:00:00", day=2), out)
    gate.admit((7, at("09:00:01", day=2), RawEvent(EventKind.KEY_DOWN, key="d", char="d")), out)
    got = [(t, e.kind.value, e.reason or e.key or e.app_class) for t, _, e in out]
    assert got == [(1, "focus", "Notes"), (2, "key_down", "a"), (3, "pause", "outside_hours"),
                   (6, "resume", "in_hours"), (6, "focus", "Notes"), (7, "key_down", "d")]


@pytest.mark.parametrize("app_class, title, secret", [
    ("XTerm", "[sudo] password for alice", True),
    ("Gcr-prompter", "Unlock Login Keyring", True),
    ("Pinentry-gtk-2", "", True),
    ("XTerm", "Enter passphrase for key '/home/a/.ssh/id_rsa'", True),
    ("Firefox", "Sign in - Google Accounts", True),
    ("KeePassXC", "Passwords.kdbx", True),
    ("XTerm", "make test", False),
    ("Code", "pinboard.py - project", False),
    ("Firefox", "Passing tests - CI", False),
])
def test_password_prompts_are_recognised_by_title_and_application(app_class: str, title: str, secret: bool) -> None:
    assert is_password_prompt(app_class, None, title) is secret
