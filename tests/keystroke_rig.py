"""Real typing as events: the CMU keystroke benchmark (Killourhy & Maxion 2009) replayed as key_down/key_up.

51 people typed ``.tie5Roanl`` + Return 400 times each (8 sessions of 50); the
CSV holds each repetition's hold (H.k), down-down (DD.a.b) and up-down times
in seconds. ``cmu_events`` turns every repetition into the events the agent
would have recorded: one capture session per (person, sessionIndex), a focus
event first, each repetition 1.5 s after the last, the R typed with a Shift held around it.
The data is in ../shared/data/keystroke/ (see its SOURCE.md); nothing is
downloaded.
"""

from __future__ import annotations

import csv
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

from deskcorder.events import EVENT_SCHEMA

CMU_CSV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "keystroke" / "DSL-StrongPasswordData.csv"
# The CSV's key names, in typing order, with the (key, char) the agent records for each.
CMU_KEYS: tuple[tuple[str, str, str | None], ...] = (
    ("period", ".", "."), ("t", "t", "t"), ("i", "i", "i"), ("e", "e", "e"), ("five", "5", "5"),
    ("Shift.r", "R", "R"), ("o", "o", "o"), ("a", "a", "a"), ("n", "n", "n"), ("l", "l", "l"),
    ("Return", "enter", None))
_WALL0 = 1_800_000_000 * 10**9


def cmu_rows(limit: int | None = None) -> list[dict[str, str]]:
    with open(CMU_CSV, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows if limit is None else rows[:limit]


def cmu_events(rows: list[dict[str, str]], *, title: str = "Terminal",
               titles: dict[str, str] | None = None) -> tuple[pa.Table, dict[str, str]]:
    """Events for ``rows`` (CSV dicts) and {device_id: subject}; ``titles`` picks a window title per subject."""
    cols: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
    devices: list[str] = []
    owners: dict[str, str] = {}
    sessions: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    ends: dict[tuple[str, str], int] = {}
    for row in rows:
        subject = row["subject"]
        events = sessions.setdefault((subject, row["sessionIndex"]), [])
        t = ends.get((subject, row["sessionIndex"]), 0) + 1_500_000_000  # 1.5 s after the last key came up
        if not events:
            events.append((0, {"kind": "focus", "app_class": "XTerm", "app_process": "bash",
                               "window_title": (titles or {}).get(subject, title)}))
        prev = None
        for name, key, char in CMU_KEYS:
            if prev is not None:
                t += int(float(row[f"DD.{prev}.{name}"]) * 1e9)
            hold = int(float(row[f"H.{name}"]) * 1e9)
            if name == "Shift.r":  # Shift goes down just before the R and comes up just after it
                events.append((t - 20_000_000, {"kind": "key_down", "key": "shift"}))
                events.append((t + hold + 5_000_000, {"kind": "key_up", "key": "shift"}))
            events.append((t, {"kind": "key_down", "key": key, "char": char}))
            events.append((t + hold, {"kind": "key_up", "key": key, "char": char}))
            prev = name
        ends[(subject, row["sessionIndex"])] = max(t for t, _ in events[-4:])
    for (subject, index), events in sessions.items():
        session_id = uuid.uuid5(uuid.NAMESPACE_URL, f"cmu/{subject}/{index}").hex
        device = f"cmu-{subject}"
        owners[device] = subject
        events.sort(key=lambda e: e[0])
        for seq, (t, fields) in enumerate(events):
            row = {"session_id": session_id, "seq": seq, "t_mono_ns": t, "t_wall_ns": _WALL0 + t, **fields}
            for name in EVENT_SCHEMA.names:
                cols[name].append(row.get(name))
            devices.append(device)
    table = pa.table(cols, schema=EVENT_SCHEMA)
    return table.append_column("device_id", pa.array(devices, pa.string())), owners
