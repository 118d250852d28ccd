"""`deskcorder dataset build` on a real store: the files, their schema, statistics, card, privacy and audit."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deskcorder.dataset import ACTION_SCHEMA, EPISODE_SCHEMA, TABLES, DatasetError, build_dataset, read_table
from deskcorder.events import Event, EventKind, columns_to_table, events_to_columns
from deskcorder.privacy import Span
from deskcorder.store import EventStore
from deskcorder.wire import MSGPACK, decode_batch, encode_batch

from .helpers import TEST_ACTOR, enrol

SECRETS = {"email": "ana.lopez@example.com", "card": "4111 1111 1111 1111", "token": "ghp_" + ("x7Kq2" * 8)[:36]}


def _session(device: str, title: str, text: str) -> list[Event]:
    session = uuid.uuid4().hex
    t = 10**9
    wall = __import__("time").time_ns()
    events = [Event(session_id=session, seq=0, t_mono_ns=t, t_wall_ns=wall, kind=EventKind.FOCUS,
                    app_class="Notes", app_process="notes", window_title=title)]
    for c in text:
        t += 40_000_000
        key = "space" if c == " " else c
        for kind in (EventKind.KEY_DOWN, EventKind.KEY_UP):
            events.append(Event(session_id=session, seq=len(events), t_mono_ns=t, t_wall_ns=wall + t,
                                kind=kind, key=key, char=c))
    return events


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    """Two people, three devices, each device one session typing secrets into a title naming its owner."""
    data_dir = tmp_path / "data"
    with EventStore(data_dir) as store:
        for handle, devices in (("ana", ["dev-ana-laptop", "dev-ana-desk"]), ("bo", ["dev-bo-laptop1"])):
            enrol(store, handle, *devices)
            for i, device in enumerate(devices):
                text = f"hi {SECRETS['email']} card {SECRETS['card']} tok {SECRETS['token']} end{i}"
                events = _session(device, f"{handle}@{device}.test: ~/home/{handle}", text)
                batch = encode_batch(uuid.uuid4().hex, device, events_to_columns(events), MSGPACK)
                store.write_batch(decode_batch(batch, MSGPACK))
    return EventStore(data_dir)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deskcorder", "dataset", *args], capture_output=True, text=True)


def _files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def _jsonl(out: Path, table: str) -> list[dict]:
    return [json.loads(line) for split in ("train", "validation", "test")
            for line in (out / "data" / table / f"{split}-00000.jsonl").read_text().splitlines()]


def test_build_writes_parquet_jsonl_stats_and_card_that_agree(store: EventStore, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = _cli("build", "--data-dir", str(store.data_dir), "--out", str(out), "--internal")
    assert result.returncode == 0, result.stderr
    assert _files(out) == ["README.md", *(f"data/{t}/{s}-00000.{f}" for t in sorted(TABLES)
                                          for s in ("test", "train", "validation") for f in ("jsonl", "parquet")),
                           "stats.json"]
    actions = read_table(out, "actions")
    assert actions.schema.equals(ACTION_SCHEMA, check_metadata=False)
    assert actions.schema.field("event_seqs").metadata[b"description"].startswith(b"provenance")
    assert read_table(out, "episodes").schema.equals(EPISODE_SCHEMA, check_metadata=False)
    assert _jsonl(out, "actions") == actions.to_pylist()
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["sessions"], stats["persons"], stats["actions"]) == (3, 2, 3)
    assert stats["actions_by_kind"] == {"type": 3}
    # Three typed e-mail addresses, and three titles "handle@device.test" that look like one.
    assert stats["redactions"]["EMAIL"] == 6 and stats["redactions"]["CREDIT_CARD"] == 3
    assert stats["redactions"]["SECRET"] == 3
    card = (out / "README.md").read_text()
    assert "event_seqs" in card and "<EMAIL>" in card and stats["pseudonym_key_id"] in card and "INTERNAL" in card
    assert "actions" in result.stdout and str(out) in result.stdout


def test_no_secret_name_host_or_device_id_reaches_the_dataset(store: EventStore, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    assert _cli("build", "--data-dir", str(store.data_dir), "--out", str(out)).returncode == 0
    texts = [read_table(out, "actions").column("text").to_pylist()]
    assert all("<EMAIL>" in t and "<CREDIT_CARD>" in t and "<SECRET>" in t for t in texts[0])
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    leaks = [*SECRETS.values(), "4111", "ana", "bo@", "dev-ana", "dev-bo", ".test"]
    leaks += [e.employee_id for e in store.employees()] + [s.session_id for s in store.sessions()]
    assert [leak for leak in leaks if leak.encode() in everything] == []


def test_a_person_is_in_one_split_and_keeps_one_pseudonym_in_internal_builds(store: EventStore,
                                                                               tmp_path: Path) -> None:
    out = tmp_path / "ds"
    assert _cli("build", "--data-dir", str(store.data_dir), "--out", str(out), "--internal").returncode == 0
    episodes = read_table(out, "episodes").to_pylist()
    by_person: dict[str, set[str]] = {}
    for e in episodes:
        by_person.setdefault(e["person_id"], set()).add(e["split"])
    assert len(by_person) == 2 and all(len(splits) == 1 for splits in by_person.values())
    again = tmp_path / "again"
    assert _cli("build", "--data-dir", str(store.data_dir), "--out", str(again), "--internal").returncode == 0
    assert {e["person_id"] for e in read_table(again, "episodes").to_pylist()} == set(by_person)
    # a release gets fresh pseudonyms, unless it is asked to be linkable
    release, linkable = tmp_path / "release", tmp_path / "linkable"
    assert _cli("build", "--data-dir", str(store.data_dir), "--out", str(release)).returncode == 0
    assert {e["person_id"] for e in read_table(release, "episodes").to_pylist()}.isdisjoint(by_person)
    assert _cli("build", "--data-dir", str(store.data_dir), "--out", str(linkable), "--linkable").returncode == 0
    assert {e["person_id"] for e in read_table(linkable, "episodes").to_pylist()} == set(by_person)
    modes = [(e.details["mode"], e.details["linkable"]) for e in store.audit_entries(action="dataset.build")]
    assert modes == [("internal", True), ("internal", True), ("release", False), ("release", True)]


def test_the_build_is_audited_with_its_statistics(store: EventStore, tmp_path: Path) -> None:
    assert _cli("build", "--data-dir", str(store.data_dir), "--out", str(tmp_path / "ds"),
                "--purpose", "train typing model v3").returncode == 0
    (entry,) = store.audit_entries(action="dataset.build")
    assert entry.reason == "train typing model v3" and entry.details["actions"] == 3
    assert any(e.action == "events.read" and e.reason == "train typing model v3" for e in store.audit_entries())
    assert store.verify_audit_chain() is None


def test_an_existing_dataset_is_not_overwritten_without_asking(store: EventStore, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = _cli("build", "--data-dir", str(store.data_dir), "--out", str(out))
    assert result.returncode == 2 and "--overwrite" in result.stderr and "Traceback" not in result.stderr
    assert (out / "keep.txt").read_text() == "mine"
    assert _cli("build", "--data-dir", str(store.data_dir), "--out", str(out), "--overwrite").returncode == 0
    assert not (out / "keep.txt").exists() and (out / "stats.json").exists()
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_a_failed_build_leaves_no_dataset_behind(tmp_path: Path) -> None:
    class Broken:
        key_id = "k"

        def pseudonym(self, kind: str, value: str) -> str:
            raise RuntimeError("disk on fire")

    events = columns_to_table(events_to_columns(_session("d" * 8, "t", "abc")))
    with pytest.raises(RuntimeError, match="disk on fire"):
        build_dataset(events, tmp_path / "ds", pseudonymizer=Broken())
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatasetError, match="no events"):
        build_dataset(events.slice(0, 0), tmp_path / "ds")


def test_stats_command_prints_a_built_dataset_and_refuses_other_folders(store: EventStore, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    assert _cli("build", "--data-dir", str(store.data_dir), "--out", str(out)).returncode == 0
    shown = _cli("stats", str(out))
    assert shown.returncode == 0 and "type" in shown.stdout
    refused = _cli("stats", str(tmp_path))
    assert refused.returncode == 2 and "no stats.json" in refused.stderr


def test_an_empty_store_is_a_clear_error(tmp_path: Path) -> None:
    with EventStore(tmp_path / "data") as store:
        store.add_employee("nobody", actor=TEST_ACTOR)
    result = _cli("build", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "ds"))
    assert result.returncode == 2 and "no events" in result.stderr and "Traceback" not in result.stderr


class FirstLetterRedactor:
    """A redactor double: hides typed text in password prompts, the first letter of the rest, and records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, str | None]] = []

    def find_spans(self, text: str, *, app_class: str | None = None, window_title: str | None = None,
                   known_identifiers: object = ()) -> list[Span]:
        self.calls.append((text, app_class, window_title))
        if window_title and "password" in window_title.lower():
            return [Span(0, len(text), "PASSWORD", "double")]
        return [Span(0, 1, "FIRST", "double")]

    def redact_title(self, title: str, *, known_identifiers: object = ()) -> tuple[str, dict[str, int]]:
        return title, {}


class TaggingPseudonymizer:
    key_id = "test-key"

    def pseudonym(self, kind: str, value: str) -> str:
        return f"{kind}-of-{value}"


def test_typed_text_goes_through_the_redactor_with_its_window_and_ids_through_the_pseudonymizer(
        tmp_path: Path) -> None:
    prompt = _session("dev-1", "Password for ana", "hunter2")
    notes = _session("dev-2", "notes.txt", "hello")
    orphan = _session("dev-3", "notes.txt", "who")
    table = columns_to_table(events_to_columns(prompt + notes + orphan))
    devices = [d for d, events in (("dev-1", prompt), ("dev-2", notes), ("dev-3", orphan)) for _ in events]
    table = table.append_column("device_id", pa.array(devices))
    redactor = FirstLetterRedactor()
    stats = build_dataset(table, tmp_path / "ds", redactor=redactor, pseudonymizer=TaggingPseudonymizer(),
                          device_to_employee={"dev-1": "emp-ana", "dev-2": "emp-ana", "dev-9": "emp-zed"})
    assert sorted(redactor.calls) == [("hello", "Notes", "notes.txt"), ("hunter2", "Notes", "Password for ana"),
                                      ("who", "Notes", "notes.txt")]
    assert stats.redactions == {"FIRST": 2, "PASSWORD": 1}
    rows = sorted(read_table(tmp_path / "ds", "actions").to_pylist(), key=lambda a: a["device_id"])
    assert [(a["text"], a["device_id"], a["person_id"]) for a in rows] == [
        ("<PASSWORD>", "device-of-dev-1", "person-of-emp-ana"), ("<FIRST>ello", "device-of-dev-2", "person-of-emp-ana"),
        ("<FIRST>ho", "device-of-dev-3", None)]
    sessions = {prompt[0].session_id, notes[0].session_id, orphan[0].session_id}
    assert {a["session_id"] for a in rows} == {f"session-of-{s}" for s in sessions}
    assert all(a["episode_id"].startswith(a["session_id"] + "-") for a in rows)
    assert rows[0]["split"] == rows[1]["split"]  # one person, two devices: one split
    assert stats.persons == 1


def test_the_split_is_by_person_with_about_the_intended_shares(tmp_path: Path) -> None:
    events, devices, owners = [], [], {}
    for i in range(300):
        session = _session(f"dev-{i}", "t", "a")
        events += session
        devices += [f"dev-{i}"] * len(session)
        owners[f"dev-{i}"] = f"emp-{i // 2}"  # two devices each
    table = columns_to_table(events_to_columns(events))
    table = table.append_column("device_id", pa.array(devices))
    stats = build_dataset(table, tmp_path / "ds", pseudonymizer=TaggingPseudonymizer(),
                          device_to_employee=owners)
    episodes = read_table(tmp_path / "ds", "episodes").to_pylist()
    per_person: dict[str, set[str]] = {}
    for e in episodes:
        per_person.setdefault(e["person_id"], set()).add(e["split"])
    assert len(per_person) == 150 and all(len(s) == 1 for s in per_person.values())
    people = {name: v["persons"] for name, v in stats.splits.items()}
    assert sum(people.values()) == 150
    assert 100 <= people["train"] <= 140 and people["validation"] >= 5 and people["test"] >= 5, people


def test_episodes_jsonl_mirrors_episodes_parquet_and_a_file_is_no_out_folder(tmp_path: Path) -> None:
    events = columns_to_table(events_to_columns(_session("d", "t", "abc")))
    build_dataset(events, tmp_path / "ds")
    assert _jsonl(tmp_path / "ds", "episodes") == read_table(tmp_path / "ds", "episodes").to_pylist()
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        build_dataset(events, tmp_path / "file", overwrite=True)
    build_dataset(events, tmp_path / "ds", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "file"]  # no temporary or old folder left
