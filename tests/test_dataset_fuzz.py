"""A build never fails on recorded input, and every typed character ends up in the text or in a placeholder.

Issue 9, failure 10: typing a line, Enter and another line into a window whose
title reads as a password prompt crashed the build (the joined text was split
after redaction). Hypothesis builds datasets from generated event streams
(every kind, keys with modifiers, prompt-like titles, gaps, pauses, repeats);
the CMU benchmark's real typing (490k events, 51 people) goes through once.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deskcorder.dataset import BuildOptions, build_dataset, read_table
from deskcorder.events import EVENT_SCHEMA
from deskcorder.privacy import Redactor

from .keystroke_rig import CMU_CSV, cmu_events, cmu_rows
from .test_dataset_rules import Recording, build

TITLES = ["login", "[sudo] password for ana:", "Sign in - Mozilla Firefox", "notes.txt", "~/src", "Password:",
          "ana@ws-042: ~", None]
KEYS = [("a", "a"), ("B", "B"), ("7", "7"), ("space", " "), ("!", "!"), ("@", "@"), ("enter", None),
        ("backspace", None), ("tab", None), ("left", None), ("f5", None), ("escape", None), ("é", "é")]
MODIFIERS = ["shift", "ctrl_l", "alt_l", "cmd", "alt_gr", "caps_lock"]


class NoRedaction:
    """Finds nothing: the build's texts as typed, to hold the real build's texts against."""

    def find_spans(self, text: str, **_: Any) -> list:
        return []

    def redact_title(self, title: str, **_: Any) -> tuple[str, dict[str, int]]:
        return title, {}


def test_typing_two_lines_into_a_login_window_builds_with_both_lines_redacted(tmp_path: Path) -> None:
    r = Recording()
    r.focus("XTerm", "login")
    r.type("a")
    r.key("enter")
    r.type("b")
    actions, _ = build(tmp_path, r)
    assert [(a["kind"], a["text"], a["keys"]) for a in actions] == [
        ("type", "<PASSWORD>", None), ("key", None, "enter"), ("type", "<PASSWORD>", None)]


def test_the_line_after_sudo_is_redacted_by_context_and_the_command_stays(tmp_path: Path) -> None:
    r = Recording()
    r.focus("XTerm", "~/src")
    r.type("sudo apt update")
    r.key("enter")
    r.type("hunter22")
    actions, _ = build(tmp_path, r)
    assert [a["text"] for a in actions if a["kind"] == "type"] == ["sudo apt update", "<PASSWORD>"]


_step = st.one_of(
    st.tuples(st.just("focus"), st.sampled_from(["XTerm", "Firefox", "Pinentry", "Code"]), st.sampled_from(TITLES)),
    st.tuples(st.just("key"), st.sampled_from(KEYS), st.lists(st.sampled_from(MODIFIERS), max_size=2)),
    st.tuples(st.just("text"), st.text(alphabet="ab 1@.x-", min_size=1, max_size=12)),
    st.tuples(st.just("pointer"), st.sampled_from(["click", "drag", "scroll_up", "scroll_down", "move"])),
    st.tuples(st.just("gap"), st.sampled_from([1, 600, 2500, 31_000])),
    st.tuples(st.just("pause"),),
    st.tuples(st.just("repeat"),),
)


def _recording(steps: list[tuple]) -> Recording:
    r = Recording()
    for step in steps:
        kind = step[0]
        if kind == "focus":
            r.focus(step[1], step[2]) if step[2] is not None else r.add("focus", app_class=step[1])
        elif kind == "key":
            (key, char), mods = step[1], step[2]
            for m in mods:
                r.add("key_down", key=m)
            r.key(key, char)
            for m in reversed(mods):
                r.add("key_up", key=m)
        elif kind == "text":
            r.type(step[1])
        elif kind == "pointer":
            what = step[1]
            if what == "click":
                r.click(100, 100)
            elif what == "drag":
                r.add("button_down", button="left", x=10, y=10)
                r.add("move", x=40, y=30, after_ms=16)
                r.add("button_up", button="left", x=80, y=60, after_ms=16)
            elif what == "move":
                r.add("move", x=5, y=5, after_ms=16)
            else:
                r.add("scroll", x=50, y=50, dx=0, dy=1 if what == "scroll_up" else -1)
        elif kind == "gap":
            r.t += step[1] * 10**6
        elif kind == "pause":
            r.add("pause", reason="user clicked pause")
            r.add("resume", reason="user clicked resume", after_ms=5000)
        elif kind == "repeat" and r.events:
            r.events.append(r.events[-1])  # sent twice: the same (session_id, seq) again
    if not r.events:
        r.add("move", x=1, y=1)  # a build needs one event; gaps alone make none
    return r


def _table(r: Recording) -> pa.Table:
    from deskcorder.events import events_to_columns
    return pa.table(events_to_columns(r.events), schema=EVENT_SCHEMA)


def _placeholder_pattern(redacted: str) -> re.Pattern[str]:
    parts = re.split(r"(<[A-Z_]+>)", redacted)
    return re.compile("".join(".+?" if re.fullmatch(r"<[A-Z_]+>", p) else re.escape(p) for p in parts), re.S)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_step, min_size=1, max_size=25))
def test_every_generated_stream_builds_and_every_typed_character_is_kept_or_in_a_placeholder(steps: list) -> None:
    events = _table(_recording(steps))
    internal = BuildOptions(mode="internal")
    with tempfile.TemporaryDirectory() as tmp:
        build_dataset(events, Path(tmp) / "release", redactor=Redactor())
        build_dataset(events, Path(tmp) / "real", internal, redactor=Redactor())
        build_dataset(events, Path(tmp) / "raw", internal, redactor=NoRedaction())
        real = read_table(Path(tmp) / "real", "actions").to_pylist()
        raw = read_table(Path(tmp) / "raw", "actions").to_pylist()
        presses = read_table(Path(tmp) / "real", "keystrokes").to_pylist()
        released = read_table(Path(tmp) / "release", "keystrokes").num_rows
    assert [(a["kind"], a["event_seqs"]) for a in real] == [(a["kind"], a["event_seqs"]) for a in raw]
    for a, b in zip(real, raw):
        if a["kind"] == "type":
            assert _placeholder_pattern(a["text"]).fullmatch(b["text"]), (a["text"], b["text"])
    # every press of a key that is not a modifier or a lock is in exactly one action
    downs = [e for e in events.to_pylist() if e["kind"] == "key_down" and e["key"] not in MODIFIERS]
    listed = [s for a in real for s in a["event_seqs"]]
    assert sorted({e["seq"] for e in downs} - set(listed)) == []
    assert len(listed) == len(set(listed))
    # every listed key press of a keyboard action has its row in keystrokes, the release included
    keyboard = [s for a in real if a["kind"] in ("type", "hotkey", "key") for s in a["event_seqs"]]
    assert len([k for k in presses if k["key_class"] != "modifier" or k["key"] is None]) >= len(keyboard)
    assert released == len(presses)
    # a run redacted as a whole keeps no character's identity, nor even its class
    whole = {a["action_id"] for a in real if a["kind"] == "type" and re.fullmatch(r"<[A-Z_]+>", a["text"] or "")}
    assert [k for k in presses if k["action_id"] in whole
            and k["key_class"] in ("letter", "digit", "space", "punctuation")] == []
    assert all(k["key"] is None for k in presses if k["key_class"] == "redacted")


@pytest.mark.skipif(not CMU_CSV.exists(), reason="the CMU keystroke data is in ../shared/data/keystroke")
def test_the_cmu_benchmark_typed_into_login_windows_builds(tmp_path: Path) -> None:
    rows = cmu_rows()
    subjects = sorted({r["subject"] for r in rows})
    titles = {s: ("login" if i % 3 == 0 else "[sudo] password for x:" if i % 3 == 1 else "~")
              for i, s in enumerate(subjects)}
    events, owners = cmu_events(rows, titles=titles)
    assert events.num_rows > 480_000
    stats = build_dataset(events, tmp_path / "ds", device_to_employee=owners)
    assert stats.events == events.num_rows and stats.persons == 51
    # each repetition is a typed run (two where the typist paused > 2 s) and its Return
    assert stats.actions_by_kind["key"] == len(rows)
    assert len(rows) <= stats.actions_by_kind["type"] < 1.02 * len(rows)
