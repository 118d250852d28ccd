"""The vectorised key presses are the presses of the one-event-at-a-time rules (KeyTimer), on random streams.

``key_presses`` computes with polars what ``KeyTimer`` does event by event, and
replays only the stretches its vectorised rules do not cover. Streams with
auto-repeat, keys released under another case or side, lost releases, lock
keys, pointer presses and pauses between keys must give the same presses,
release times and modifier presses as replaying every stretch.
"""

from __future__ import annotations

import random

import polars as pl
import pyarrow as pa
import pytest

from deskcorder.dataset._episodes import prepare
from deskcorder.dataset._keystrokes import KeyTimer, key_presses
from deskcorder.dataset._options import BuildOptions
from deskcorder.events import EVENT_SCHEMA

KEYS = ["a", "A", "h", "H", "1", "!", "space", "backspace", "enter", "shift", "shift_r", "ctrl_l", "ctrl_r", "alt",
        "alt_gr", "cmd", "caps_lock", "f5"]
CHARS = {"a": "a", "A": "A", "h": "h", "H": "H", "1": "1", "!": "!", "space": " "}
# Released under another name: case and side the vectorised rules follow; "1" for "!" (Shift up first) they replay.
RELEASED_AS = {"H": "h", "ctrl_l": "ctrl_r", "shift": "shift_r"}
LOOSELY_RELEASED_AS = {**RELEASED_AS, "!": "1"}


def _stream(seed: int, tidy: bool) -> pa.Table:
    """Key events in 3 sessions; ``tidy`` releases mostly what is held (so most stretches are vectorised)."""
    rng = random.Random(seed)
    cols: dict[str, list] = {name: [] for name in EVENT_SCHEMA.names}
    for s in range(3):
        t, seq, down = 10**9, 0, []

        def add(kind: str, **fields: object) -> None:
            nonlocal seq
            row = {"session_id": f"{seed:016x}{s:016x}", "seq": seq, "t_mono_ns": t, "t_wall_ns": t, "kind": kind,
                   **fields}
            for name in EVENT_SCHEMA.names:
                cols[name].append(row.get(name))
            seq += 1

        add("focus", app_class="XTerm", app_process="bash", window_title="~")
        for _ in range(200):
            t += rng.randint(10, 300) * 10**6
            r = rng.random()
            if r < 0.45:
                key = rng.choice(KEYS)
                down.append(key)
                add("key_down", key=key, char=CHARS.get(key))
            elif r < 0.88:
                if tidy and down and rng.random() < 0.99:
                    key = down.pop(rng.randrange(len(down)))
                else:
                    key = rng.choice(KEYS)
                renamed = RELEASED_AS if tidy else LOOSELY_RELEASED_AS
                key = renamed.get(key, key) if rng.random() < 0.3 else key
                add("key_up", key=key, char=CHARS.get(key))
            elif r < 0.93:
                add("button_down", button="left", x=1, y=1)
                add("button_up", button="left", x=1, y=1)
            elif r < 0.96:
                add("scroll", x=1, y=1, dx=0, dy=1)
            else:
                add("pause", reason="hotkey")
                add("resume")
                down.clear()
    return pa.Table.from_pydict(cols, schema=EVENT_SCHEMA)


def _replayed(frame: pl.DataFrame) -> tuple[dict[int, int | None], list[tuple[int, int]]]:
    """Press row -> up time, and (press, modifier) rows, from KeyTimer over every stretch."""
    ups: dict[int, int | None] = {}
    pairs: list[tuple[int, int]] = []
    timer = KeyTimer()
    for row, code, kind, t, key, new_session in frame.select(
            "row", "code", "kind", "t_mono_ns", "key", "new_session").iter_rows():
        if new_session or kind in ("pause", "gap"):
            ups.update(zip(timer.presses, timer.ups))
            pairs += [(timer.presses[i], timer.presses[j]) for i, mods in timer.with_mods.items() for j in mods]
            timer = KeyTimer()
        if kind == "key_down":
            timer.down(row, key)
        elif kind == "key_up":
            timer.up(t, key)
        elif kind in ("button_down", "scroll"):
            timer.pointer()
    ups.update(zip(timer.presses, timer.ups))
    pairs += [(timer.presses[i], timer.presses[j]) for i, mods in timer.with_mods.items() for j in mods]
    return ups, sorted(pairs)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("tidy", [True, False], ids=["mostly-held-releases", "any-releases"])
def test_vectorised_presses_are_the_presses_of_the_event_by_event_rules(seed: int, tidy: bool) -> None:
    frame = prepare(_stream(seed, tidy), BuildOptions()).frame
    n_downs = int((frame["kind"] == "key_down").sum())
    presses, with_mods = key_presses(frame, ["ctrl"] * n_downs)
    ups, pairs = _replayed(frame)
    assert dict(zip(presses["press"].to_list(), presses["up"].to_list())) == ups
    assert list(zip(with_mods["press"].to_list(), with_mods["modifier"].to_list())) == pairs
    assert presses["mods"].to_list() == ["ctrl"] * presses.height
    assert presses["down"].to_list() == frame["t_mono_ns"].gather(presses["press"]).to_list()
