"""Encryption at rest, erasure, retention, subject access and the audit chain, through the real CLI.

Each test builds a data dir with two people whose window titles carry a
distinctive word, then works on it with `python -m deskcorder ...` and checks
the effect by reopening the store, reading the zip, or searching every byte on
disk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore, NotFound, StoreError, StaticMasterKey
from deskcorder.wire import MSGPACK, decode_batch, encode_batch

from .helpers import READ, TEST_ACTOR, enrol

RETAIN_30_DAYS = """\
version = 1
scope_text = "Tests: every application, kept 30 days."
retention_days = 30

[[apps]]
title_include = [".*"]
"""
WORDS = {"zebra-person": "ZEBRAFROG-TITLE-1", "okapi-person": "OKAPIMOTH-TITLE-2"}
DEVICES = {"zebra-person": "zebra-device-01", "okapi-person": "okapi-device-02"}


def _write_session(store: EventStore, handle: str) -> None:
    session, wall = uuid.uuid4().hex, time.time_ns()
    events = [Event(session, 0, 1, wall, EventKind.FOCUS, app_class="Notes", app_process="notes",
                    window_title=f"{WORDS[handle]} - Notes")]
    events += [Event(session, 1 + i, 2 + i, wall + i, EventKind.KEY_DOWN, key=c, char=c) for i, c in enumerate("hi")]
    body = encode_batch(uuid.uuid4().hex, DEVICES[handle], events_to_columns(events), MSGPACK)
    store.write_batch(decode_batch(body, MSGPACK))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    with EventStore(data_dir) as store:
        store.set_policy(RETAIN_30_DAYS, actor=TEST_ACTOR)
        for handle in WORDS:
            enrol(store, handle, DEVICES[handle])
            _write_session(store, handle)
    return data_dir


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deskcorder", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=120)


def disk_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())


def titles(store: EventStore, **filters: str) -> set[str]:
    return {t for t in store.read_events(**READ, **filters).column("window_title").to_pylist() if t}


def test_event_files_are_encrypted_and_need_the_master_key(data_dir: Path) -> None:
    files = list((data_dir / "events").rglob("*.parquet"))
    assert len(files) == 2
    raw = b"".join(p.read_bytes() for p in files)
    assert all(word.encode() not in raw for word in WORDS.values()) and b"PAR1" not in raw[:4]
    with EventStore(data_dir) as store:
        assert titles(store) == {f"{w} - Notes" for w in WORDS.values()}
    wrong = StaticMasterKey(os.urandom(32), source="a test")
    with EventStore(data_dir, key_wrapper=wrong) as store, pytest.raises(StoreError, match="wrapped by master key"):
        store.read_events(**READ)


def test_erasure_leaves_no_byte_of_the_person_and_keeps_everyone_else(data_dir: Path, tmp_path: Path) -> None:
    with EventStore(data_dir) as store:
        zebra_id = store.employee("zebra-person").employee_id
    result = cli(data_dir, "erase", "--employee", "zebra-person", "--reason", "ticket DPO-17", "--yes")
    assert result.returncode == 0, result.stderr
    everything = disk_bytes(data_dir)
    for trace in (WORDS["zebra-person"], "zebra-person", DEVICES["zebra-person"]):
        assert trace.encode() not in everything, trace
    with EventStore(data_dir) as store:
        with pytest.raises(NotFound):
            store.employee("zebra-person")
        assert titles(store) == {f"{WORDS['okapi-person']} - Notes"}
        actions = [(e.action, e.target) for e in store.audit_entries() if e.action.startswith("erasure")]
        assert actions == [("erasure.start", f"employee:{zebra_id}"), ("erasure.complete", f"employee:{zebra_id}")]
        assert store.verify_audit_chain() is None
    # No tool brings them back: a dataset holds only the other person, an export is refused.
    build = subprocess.run([sys.executable, "-m", "deskcorder", "dataset", "build", "--data-dir", str(data_dir),
                            "--out", str(tmp_path / "ds")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    assert json.loads((tmp_path / "ds" / "stats.json").read_text())["persons"] == 1
    export = cli(data_dir, "export", "--employee", "zebra-person", "--out", str(tmp_path / "z.zip"))
    assert export.returncode == 2 and "zebra-person" in export.stderr and not (tmp_path / "z.zip").exists()
    # Re-running an erasure that already finished is a clear no-op error, not a crash.
    again = cli(data_dir, "erase", "--employee", "zebra-person", "--reason", "again", "--yes")
    assert again.returncode == 2 and "Traceback" not in again.stderr


def test_retention_deletes_expired_days_only_when_they_expire(data_dir: Path) -> None:
    today = dt.datetime.now(dt.timezone.utc).date()
    early = dt.datetime.combine(today + dt.timedelta(days=30), dt.time(12), dt.timezone.utc)
    kept = cli(data_dir, "retention", "apply", "--now", early.isoformat())
    assert kept.returncode == 0, kept.stderr
    assert len(list((data_dir / "events").rglob("*.parquet"))) == 2
    late = dt.datetime.combine(today + dt.timedelta(days=31, hours=1), dt.time(0, 30), dt.timezone.utc)
    dry = cli(data_dir, "retention", "apply", "--now", late.isoformat(), "--dry-run")
    assert dry.returncode == 0 and today.isoformat() in dry.stdout
    assert len(list((data_dir / "events").rglob("*.parquet"))) == 2
    done = cli(data_dir, "retention", "apply", "--now", late.isoformat())
    assert done.returncode == 0 and today.isoformat() in done.stdout
    assert list((data_dir / "events").rglob("*.parquet")) == []
    with EventStore(data_dir) as store:
        assert store.read_events(**READ).num_rows == 0
        (entry,) = [e for e in store.audit_entries() if e.action == "retention.delete"]
        assert entry.details["events"] == 6 and store.verify_audit_chain() is None


def test_subject_access_export_holds_the_persons_events_and_records_only(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "okapi.zip"
    result = cli(data_dir, "export", "--employee", "okapi-person", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out.stat().st_mode & 0o077) == 0
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        content = b"".join(z.read(n) for n in names)
    assert any(n.lower().startswith("readme") for n in names)
    assert WORDS["okapi-person"].encode() in content and WORDS["zebra-person"].encode() not in content
    assert b"give" in content  # the consent history
    with EventStore(data_dir) as store:
        assert [e.action for e in store.audit_entries(employee="okapi-person")][-1] == "employee.export"


def test_an_edited_deleted_or_reordered_audit_row_is_detected(data_dir: Path, tmp_path: Path) -> None:
    assert cli(data_dir, "audit", "verify").returncode == 0

    def tamper(sql: str) -> subprocess.CompletedProcess:
        copy = tmp_path / uuid.uuid4().hex
        shutil.copytree(data_dir, copy)
        with contextlib.closing(sqlite3.connect(copy / "control.db")) as conn, conn:
            conn.executescript(sql)
        return cli(copy, "audit", "verify")

    edited = tamper("UPDATE audit_log SET reason = 'nothing to see' WHERE id = 3")
    assert edited.returncode == 1 and "entry 3" in edited.stderr
    deleted = tamper("DELETE FROM audit_log WHERE id = 2")
    assert deleted.returncode == 1
    # Reordering: rows 2 and 4 (different actions) trade places, each keeping its own valid hash.
    swapped = tamper("UPDATE audit_log SET id = -id WHERE id IN (2, 4); "
                     "UPDATE audit_log SET id = CASE id WHEN -2 THEN 4 ELSE 2 END WHERE id IN (-2, -4)")
    assert swapped.returncode == 1
    assert cli(data_dir, "audit", "verify").returncode == 0  # the original was never touched
