"""Raw events become the right actions and episodes, each with exactly the events it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deskcorder.dataset import BuildOptions, build_dataset, read_table
from deskcorder.events import Event, EventKind, columns_to_table, events_to_columns


class Recording:
    """A session written event by event, with a clock that advances 50 ms per event unless told otherwise."""

    def __init__(self, session_id: str = "a" * 32) -> None:
        self.session_id = session_id
        self.events: list[Event] = []
        self.t = 10**9

    def add(self, kind: str, *, after_ms: float = 50, **fields: Any) -> int:
        self.t += int(after_ms * 1e6)
        seq = len(self.events)
        self.events.append(Event(session_id=self.session_id, seq=seq, t_mono_ns=self.t,
                                 t_wall_ns=1_800_000_000 * 10**9 + self.t, kind=EventKind(kind), **fields))
        return seq

    def focus(self, app: str, title: str = "window", **kw: Any) -> int:
        return self.add("focus", app_class=app, app_process=app.lower(), window_title=title, **kw)

    def key(self, key: str, char: str | None = None, **kw: Any) -> int:
        down = self.add("key_down", key=key, char=char, **kw)
        self.add("key_up", key=key, char=char)
        return down

    def type(self, text: str) -> list[int]:
        return [self.key("space" if c == " " else c, c) for c in text]

    def click(self, x: int, y: int, button: str = "left", **kw: Any) -> tuple[int, int]:
        return (self.add("button_down", button=button, x=x, y=y, **kw),
                self.add("button_up", button=button, x=x, y=y))


def build(tmp_path: Path, *recordings: Recording, **options: Any) -> tuple[list[dict], list[dict]]:
    events = [e for r in recordings for e in r.events]
    out = tmp_path / "ds"
    build_dataset(columns_to_table(events_to_columns(events)), out, BuildOptions(mode="internal", **options))
    return read_table(out, "actions").to_pylist(), read_table(out, "episodes").to_pylist()


def test_clicks_of_each_button_and_a_double_click(tmp_path: Path) -> None:
    r = Recording()
    r.focus("Editor")
    left = r.click(10, 20)
    r.add("move", x=300, y=300, after_ms=500)
    right = r.click(300, 300, "right", after_ms=100)
    middle = r.click(310, 300, "middle")
    first = r.click(50, 60, after_ms=500)
    second = r.click(51, 60, after_ms=100)
    actions, _ = build(tmp_path, r)
    assert [(a["kind"], a["button"], a["x"], a["y"]) for a in actions] == [
        ("click", "left", 10, 20), ("right_click", "right", 300, 300), ("middle_click", "middle", 310, 300),
        ("double_click", "left", 50, 60)]
    assert [a["event_seqs"] for a in actions] == [list(left), list(right), list(middle), [*first, *second]]


def test_a_drag_keeps_its_path_and_ends_where_released(tmp_path: Path) -> None:
    r = Recording()
    r.focus("Editor")
    down = r.add("button_down", button="left", x=200, y=150)
    moves = [r.add("move", x=200 + 20 * i, y=150 + i // 2) for i in range(1, 11)]
    up = r.add("button_up", button="left", x=400, y=155)
    actions, _ = build(tmp_path, r)
    (drag,) = actions
    assert (drag["kind"], drag["x"], drag["y"], drag["x2"], drag["y2"]) == ("drag", 200, 150, 400, 155)
    assert drag["event_seqs"] == [down, *moves, up]


def test_scroll_steps_merge_until_a_pause_and_sum(tmp_path: Path) -> None:
    r = Recording()
    r.focus("Browser")
    first = [r.add("scroll", x=5, y=6, dx=0, dy=-1) for _ in range(3)]
    second = [r.add("scroll", x=5, y=6, dx=1, dy=0, after_ms=gap) for gap in (900, 50)]
    actions, _ = build(tmp_path, r)
    assert [(a["kind"], a["dx"], a["dy"], a["event_seqs"]) for a in actions] == [
        ("scroll", 0, -3, first), ("scroll", 2, 0, second)]


def test_typing_with_backspace_and_shift_gives_the_final_text(tmp_path: Path) -> None:
    r = Recording()
    r.focus("Editor")
    r.add("key_down", key="shift")
    h = r.key("H", "H")
    r.add("key_up", key="shift")
    rest = r.type("ellp")
    bs = r.key("backspace")
    o = r.type("o!")
    actions, _ = build(tmp_path, r)
    (typed,) = actions
    assert (typed["kind"], typed["text"]) == ("type", "Hello!")
    assert typed["event_seqs"] == sorted([h, *rest, bs, *o])  # the shift itself is state, not provenance


def test_hotkeys_keys_and_modified_clicks(tmp_path: Path) -> None:
    r = Recording()
    r.focus("Editor")
    r.type("ab")
    r.add("key_down", key="ctrl_l")
    s = r.key("s", "s")
    r.add("key_down", key="shift")
    t = r.key("T", "T")
    r.add("key_up", key="shift")
    click = r.click(5, 5)
    r.add("key_up", key="ctrl_l")
    enter = r.key("enter")
    actions, _ = build(tmp_path, r)
    assert [(a["kind"], a["text"], a["keys"]) for a in actions] == [
        ("type", "ab", None), ("hotkey", None, "ctrl+s"), ("hotkey", None, "ctrl+shift+t"),
        ("click", None, "ctrl"), ("key", None, "enter")]
    assert [a["event_seqs"] for a in actions[1:]] == [[s], [t], list(click), [enter]]


def test_auto_repeat_types_once_per_key_down(tmp_path: Path) -> None:
    r = Recording()
    r.focus("Editor")
    for _ in range(3):
        r.add("key_down", key="x", char="x", after_ms=30)
    r.add("key_up", key="x", char="x")
    actions, _ = build(tmp_path, r)
    assert [a["text"] for a in actions] == ["xxx"]


def test_episodes_split_at_app_switches_idle_gaps_and_pauses_but_not_retitles(tmp_path: Path) -> None:
    r = Recording()
    r.focus("Editor", "notes.txt")
    r.type("ab")
    r.focus("Editor", "*notes.txt")  # the editor marks the file modified: same app, same episode
    r.type("c")
    r.focus("Terminal", "bash")
    r.type("ls")
    r.key("q", "q", after_ms=60_000)
    r.add("pause", reason="paused_by_user")
    r.add("resume", reason="resumed_by_user", after_ms=5000)
    r.focus("Terminal", "bash")
    r.type("z")
    actions, episodes = build(tmp_path, r)
    assert [e["start_reason"] for e in episodes] == ["session_start", "app_switch", "idle_gap", "pause"]
    assert [a["text"] for a in actions] == ["abc", "ls", "q", "z"]
    assert [a["episode_id"] for a in actions] == [e["episode_id"] for e in episodes]
    assert sum(e["n_events"] for e in episodes) == len(r.events)  # episodes partition the events
    assert [e["n_actions"] for e in episodes] == [1, 1, 1, 1]


def test_every_key_and_button_event_is_in_at_most_one_action(tmp_path: Path) -> None:
    r = Recording()
    r.focus("Editor")
    for i in range(20):
        r.type("hi ")
        r.click(i, i)
        r.add("scroll", x=1, y=1, dx=0, dy=1)
        r.add("key_down", key="ctrl")
        r.key("c", "c")
        r.add("key_up", key="ctrl")
    actions, _ = build(tmp_path, r)
    seqs = [s for a in actions for s in a["event_seqs"]]
    assert len(seqs) == len(set(seqs))
    kinds = {e.seq: e.kind.value for e in r.events}
    expected = {e.seq for e in r.events if e.kind.value in ("key_down", "button_down", "button_up", "scroll")
                and e.key not in ("ctrl",)}
    assert set(seqs) == expected, {kinds[s] for s in expected ^ set(seqs)}


def test_the_same_events_always_give_the_same_ids_and_repeats_are_dropped(tmp_path: Path) -> None:
    r = Recording()
    r.focus("Editor")
    r.type("same")
    events = pa.concat_tables([columns_to_table(events_to_columns(r.events)),  # two batches holding
                               columns_to_table(events_to_columns(r.events[2:4]))])  # the same events
    from deskcorder.privacy import Pseudonymizer

    key = Pseudonymizer(b"k" * 32, "test-key")
    one = build_dataset(events, tmp_path / "one", pseudonymizer=key)
    build_dataset(events, tmp_path / "two", pseudonymizer=key)
    ids = [read_table(tmp_path / d, "actions").column("action_id").to_pylist() for d in ("one", "two")]
    assert ids[0] == ids[1] and len(ids[0]) == 1
    assert one.duplicates_dropped == 2


@pytest.mark.parametrize("bad", [{"idle_gap_s": 0}, {"drag_threshold_px": -1}, {"formats": ("csv",)}])
def test_bad_options_are_refused_with_the_option_named(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        BuildOptions(**bad)


def test_a_pause_ends_a_held_press_and_forgets_held_modifiers(tmp_path: Path) -> None:
    r = Recording()
    r.focus("Editor")
    down = r.add("button_down", button="left", x=7, y=8)
    r.add("move", x=90, y=90)  # the button_up is lost: the agent paused while it was held
    r.add("key_down", key="ctrl_l")
    r.add("pause", reason="paused_by_user")
    r.add("resume", reason="resumed_by_user", after_ms=3000)
    r.add("button_up", button="left", x=90, y=90)  # its down is before the pause: no action
    typed = r.type("a")  # ctrl's key_up was lost too: this is typing, not ctrl+a
    tab = r.key("tab")
    r.add("key_down", key="shift_r")
    shift_tab = r.key("tab")
    actions, episodes = build(tmp_path, r)
    assert [(a["kind"], a["x"], a["x2"], a["text"], a["keys"], a["event_seqs"]) for a in actions] == [
        ("click", 7, None, None, None, [down]), ("type", None, None, "a", None, typed),
        ("key", None, None, None, "tab", [tab]), ("hotkey", None, None, None, "shift+tab", [shift_tab])]
    assert actions[0]["t_end_mono_ns"] == actions[0]["t_start_mono_ns"]  # unreleased: ends at the down
    assert [e["start_reason"] for e in episodes] == ["session_start", "pause"]


def test_a_typed_run_ends_at_a_click_and_at_a_pause_between_keys(tmp_path: Path) -> None:
    r = Recording()
    r.focus("Editor")
    first = r.type("ab")
    r.click(1, 1)
    second = r.type("cd")
    later = r.add("key_down", key="e", char="e", after_ms=2500)  # longer than type_merge_s (2 s)
    bs = r.key("backspace", after_ms=3000)  # too late to erase the "e": a key of its own
    actions, _ = build(tmp_path, r)
    assert [(a["kind"], a["text"], a["keys"], a["event_seqs"]) for a in actions] == [
        ("type", "ab", None, first), ("click", None, None, actions[1]["event_seqs"]),
        ("type", "cd", None, second), ("type", "e", None, [later]), ("key", None, "backspace", [bs])]


def test_actions_take_the_app_and_window_in_force_at_their_first_event(tmp_path: Path) -> None:
    r = Recording()
    r.type("x")  # before any focus event: application unknown
    r.focus("Editor", "notes.txt")
    r.type("y")
    r.focus("Editor", "*notes.txt")
    r.type("z")
    actions, episodes = build(tmp_path, r)
    assert [(a["app_class"], a["app_process"], a["window_title"], a["text"]) for a in actions] == [
        (None, None, None, "x"), ("Editor", "editor", "notes.txt", "yz")]
    assert [(e["start_reason"], e["app_class"]) for e in episodes] == [("session_start", None),
                                                                       ("app_switch", "Editor")]


def test_a_password_answering_a_terminal_prompt_is_redacted_from_the_line_entered_before(tmp_path: Path) -> None:
    r = Recording()
    r.focus("XTerm", "~/project")  # terminals keep their title while sudo asks for the password
    r.type("sudo apt update")
    r.key("enter")
    r.type("hunter2")
    r.key("enter")
    r.type("ls")
    actions, _ = build(tmp_path, r)
    assert [a["text"] for a in actions if a["kind"] == "type"] == ["sudo apt update", "<PASSWORD>", "ls"]
    stats = json.loads((tmp_path / "ds" / "stats.json").read_text())
    assert stats["redactions"] == {"PASSWORD": 1}


def test_a_scroll_that_turns_back_is_two_scroll_actions(tmp_path: Path) -> None:
    r = Recording()
    r.focus("Browser")
    up = [r.add("scroll", x=5, y=6, dx=0, dy=1) for _ in range(3)]
    down = [r.add("scroll", x=5, y=6, dx=0, dy=-1) for _ in range(2)]  # within scroll_merge_s of the last
    actions, _ = build(tmp_path, r)
    assert [(a["kind"], a["dx"], a["dy"], a["event_seqs"]) for a in actions] == [
        ("scroll", 0, 3, up), ("scroll", 0, -2, down)]


def test_an_episode_after_a_switch_to_an_app_outside_the_policy_starts_out_of_scope(tmp_path: Path) -> None:
    r = Recording()
    r.focus("Editor")
    r.type("a")
    # What the agent's gate writes (capture/_gate.py): the chat's focus is never recorded, only the
    # PAUSE; back in scope, a RESUME and the focus of the window in front.
    r.add("pause", reason="out_of_scope")
    r.add("resume", reason="in_scope", after_ms=4000)
    r.focus("Editor")
    r.type("b")
    r.add("pause", reason="paused_by_user")
    r.add("resume", reason="resumed_by_user", after_ms=4000)
    r.type("c")
    _, episodes = build(tmp_path, r)
    assert [e["start_reason"] for e in episodes] == ["session_start", "out_of_scope", "pause"]
