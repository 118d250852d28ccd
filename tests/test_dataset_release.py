"""A release is not a performance-review tool: joined with a roster of who worked when, it singles no one out.

The attacker holds the roster (``roster_rig.ROSTER``: each person's days and
shift hours, every one of them true) and a released dataset. For a pseudonym
(a person, device or session id) the people *consistent* with it are those
who worked on every day its episodes show, for at least as long on each of
those days as it recorded there. The release must leave at least
``RELEASE_MIN_PEOPLE`` people consistent with every pseudonym: an attacker
who picks one of them is right at most 1 time in 5, whatever else they know
about how long people's shifts are. The criterion fails as soon as the days
shown, the recorded durations or any clock finer than the day narrow a
pseudonym down, and it does fail on the internal build, which keeps wall-clock
times: there the same attacker, matching times to shifts, narrows everyone
down to fewer than five and names some people outright.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pytest

from deskcorder.dataset import RELEASE_MIN_PEOPLE, TABLES, BuildOptions, build_from_store, read_table
from deskcorder.store import EventStore

from .helpers import TEST_ACTOR
from .roster_rig import DAYS, PEOPLE, ROSTER, roster_store

PSEUDONYMS = ("person_id", "device_id", "session_id")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> EventStore:
    store = roster_store(tmp_path_factory.mktemp("roster") / "data")
    yield store
    store.close()


def _build(store: EventStore, out: Path, **options: object) -> Path:
    build_from_store(store, out, actor=TEST_ACTOR, purpose="roster test", options=BuildOptions(**options))
    return out


@pytest.fixture(scope="module")
def release(store: EventStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(store, tmp_path_factory.mktemp("release") / "ds")


def _hours() -> dict[str, dict[str, tuple[int, int]]]:
    """person -> day -> (start hour, hours)."""
    worked: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for s in ROSTER:
        worked[s.person][s.day] = (s.start_hour, s.hours)
    return worked


def consistent_with_days(episodes: list[dict], column: str) -> dict[str, set[str]]:
    """For each pseudonym in ``column``: the roster people who worked every day it shows, long enough."""
    recorded: dict[str, dict[str | None, float]] = defaultdict(lambda: defaultdict(float))
    for e in episodes:
        if e[column] is not None:
            recorded[e[column]][e["day"]] += e["duration_s"]
    worked = _hours()
    found = {}
    for pseudonym, per_day in recorded.items():
        total = sum(per_day.values())
        found[pseudonym] = {
            person for person, days in worked.items()
            if all(day in days and days[day][1] * 3600 >= seconds for day, seconds in per_day.items()
                   if day is not None)
            and sum(h for _, h in days.values()) * 3600 >= total}
    return found


def consistent_with_clocks(episodes: list[dict], column: str) -> dict[str, set[str]]:
    """The same attacker on an internal build: each episode's wall-clock start must fall in a shift."""
    import datetime as dt

    worked = _hours()
    found: dict[str, set[str]] = {}
    for e in episodes:
        at = dt.datetime.fromtimestamp(e["t_start_wall_ns"] / 1e9, dt.timezone.utc)
        fits = {person for person, days in worked.items()
                if (shift := days.get(at.date().isoformat())) and shift[0] <= at.hour < shift[0] + shift[1]}
        found[e[column]] = found.get(e[column], fits) & fits
    return found


def test_a_release_joined_with_the_roster_leaves_at_least_five_people_behind_every_pseudonym(
        release: Path) -> None:
    episodes = read_table(release, "episodes").to_pylist()
    assert len(episodes) == len(ROSTER)
    for column in PSEUDONYMS:
        crowds = consistent_with_days(episodes, column)
        assert len(crowds) == (len(PEOPLE) if column != "session_id" else len(ROSTER))
        smallest = min(len(c) for c in crowds.values())
        assert smallest >= RELEASE_MIN_PEOPLE, (column, sorted(len(c) for c in crowds.values()))
    # Days are not simply all hidden: the roster's days are crowded, and most people show some.
    shown = {e["day"] for e in episodes} - {None}
    assert shown and shown <= set(DAYS)


def test_the_same_attacker_singles_people_out_of_an_internal_build(store: EventStore, tmp_path: Path) -> None:
    episodes = read_table(_build(store, tmp_path / "internal", mode="internal"), "episodes").to_pylist()
    crowds = consistent_with_clocks(episodes, "person_id")
    assert len(crowds) == len(PEOPLE) and all(len(c) < RELEASE_MIN_PEOPLE for c in crowds.values()), crowds
    assert any(len(c) == 1 for c in crowds.values()), crowds


def _wall_range_ns() -> tuple[int, int]:
    import datetime as dt

    first = dt.datetime.fromisoformat(DAYS[0]).replace(tzinfo=dt.timezone.utc)
    return int(first.timestamp() * 1e9), int((first + dt.timedelta(days=len(DAYS))).timestamp() * 1e9)


def test_no_released_table_holds_a_clock_finer_than_the_day(release: Path) -> None:
    lo, hi = _wall_range_ns()
    day_ns = 86_400 * 10**9
    for table in TABLES:
        data = read_table(release, table)
        for name in data.column_names:
            column = data.column(name)
            assert not pa.types.is_temporal(column.type), (table, name)
            if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
                values = [v for v in column.to_pylist() if v is not None]
                for unit in (1, 10**3, 10**6, 10**9):  # ns, us, ms and s since the epoch
                    near = [v for v in values if (lo - day_ns) // unit <= v <= (hi + day_ns) // unit]
                    assert near == [], (table, name, unit, near[:3])
            elif pa.types.is_string(column.type):
                clocks = [v for v in column.to_pylist() if v and re.search(r"\d{1,2}:\d{2}|T\d{2}", v)]
                assert clocks == [], (table, name, clocks[:3])
    days = read_table(release, "episodes").column("day").to_pylist()
    assert all(d is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in days)
    stats = json.loads((release / "stats.json").read_text())
    assert (stats["first_event_utc"], stats["last_event_utc"]) == (DAYS[0], DAYS[-1])


def _ids(folder: Path) -> dict[str, set[str]]:
    episodes = read_table(folder, "episodes").to_pylist()
    return {c: {e[c] for e in episodes} for c in PSEUDONYMS}


def test_pseudonyms_change_with_every_release_unless_it_is_linkable(store: EventStore, release: Path,
                                                                     tmp_path: Path) -> None:
    again = _ids(_build(store, tmp_path / "again"))
    first = _ids(release)
    assert all(first[c].isdisjoint(again[c]) for c in PSEUDONYMS)
    actions = {a["action_id"] for a in read_table(release, "actions").to_pylist()}
    assert actions.isdisjoint(a["action_id"] for a in read_table(tmp_path / "again", "actions").to_pylist())
    linked = [_ids(_build(store, tmp_path / f"linkable{i}", linkable=True)) for i in range(2)]
    assert linked[0] == linked[1] and linked[0]["person_id"].isdisjoint(first["person_id"])


def test_card_and_stats_hold_no_figure_of_one_person(release: Path) -> None:
    ids = set().union(*_ids(release).values())
    card = (release / "README.md").read_text()
    stats_text = (release / "stats.json").read_text()
    assert [i for i in ids if i in card or i in stats_text] == []
    stats = json.loads(stats_text)
    # A split is everyone's or empty: never a handful of people whose figures stats.json would be.
    assert all(v["persons"] == 0 or v["persons"] >= RELEASE_MIN_PEOPLE for v in stats["splits"].values())
    assert sum(v["persons"] for v in stats["splits"].values()) == stats["persons"] == len(PEOPLE)
    assert stats["persons"] >= RELEASE_MIN_PEOPLE  # so whole-build figures are of at least five people
    assert not re.search(r"per[ _-]?(person|employee|pseudonym)", stats_text, re.IGNORECASE)


def test_a_small_release_is_all_train_so_no_split_is_one_persons(store: EventStore, tmp_path: Path) -> None:
    one = tmp_path / "one"
    build_from_store(store, one, actor=TEST_ACTOR, purpose="roster test", employee=PEOPLE[0])
    stats = json.loads((one / "stats.json").read_text())
    assert {s: v["persons"] for s, v in stats["splits"].items()} == {"train": 1, "validation": 0, "test": 0}
    assert stats["splits"]["train"]["actions"] == stats["actions"] > 0
    # fewer than five people: no day at all
    assert set(read_table(one, "episodes").column("day").to_pylist()) == {None}


def test_an_internal_build_is_audited_with_who_asked_and_why(store: EventStore, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "deskcorder", "dataset", "build", "--data-dir",
                             str(store.data_dir), "--out", str(tmp_path / "internal"), "--internal",
                             "--purpose", "typing model, raw timings"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    entries = [e for e in store.audit_entries(action="dataset.build") if e.reason == "typing model, raw timings"]
    assert [(e.details["mode"], e.details["linkable"], e.actor.startswith("cli:")) for e in entries] == [
        ("internal", True, True)]
    assert any(e.action == "events.read" and e.reason == "typing model, raw timings"
               for e in store.audit_entries())
    assert store.verify_audit_chain() is None
