"""Retention: whole UTC-date partitions go once their last moment is ``retention_days`` old, and each
deletion is audited and reported.

Clock control. Events can only be stored when they were recorded under consent, and consent is
recorded at the real time, so these tests cannot simply write events dated last month. Instead
they write events dated today and the next two days (consent, once given, covers the future too)
and move retention's clock forward: ``apply_retention(now=...)``, ``deskcorder retention apply
--now``, or the timer's ``clock``. The one test that runs the real collector, whose timer uses the
real clock, backdates the consent row in the control database (as if the store had been running
for a week) so that events dated three days ago can be stored through the normal write path.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from deskcorder.collect import RetentionTimer
from deskcorder.events import events_to_columns
from deskcorder.store import EventStore, InvalidInput, StoreError
from deskcorder.store._db._tables import consents
from deskcorder.wire import MSGPACK, Batch, decode_batch, encode_batch

from .helpers import READ, TEST_ACTOR, _read_until, _stop, enrol
from .privacy_rig import DEVICES, OKAPI, ZEBRA, database_url, policy, sqlite_only, typed_events  # noqa: F401

NS = 1_000_000_000
TODAY = dt.datetime.now(dt.timezone.utc).date()


def midnight(date: dt.date) -> dt.datetime:
    return dt.datetime.combine(date, dt.time(), dt.timezone.utc)


def ns(when: dt.datetime) -> int:
    return int(when.timestamp()) * NS + when.microsecond * 1000


def day(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def batch(device_id: str, word: str, t0: int, session: str | None = None) -> Batch:
    events = typed_events(session or uuid.uuid4().hex, word, t0)
    return decode_batch(encode_batch(uuid.uuid4().hex, device_id, events_to_columns(events), MSGPACK), MSGPACK)


def partitions(data_dir: Path) -> list[str]:
    events = data_dir / "events"
    return sorted(p.name for p in events.iterdir()) if events.exists() else []


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> Any:  # noqa: F811
    """retention_days = 1; zebra typed today, then across midnight from day+1 into day+2; okapi on day+2."""
    with EventStore(tmp_path / "data", database_url=database_url) as store:
        store.set_policy(policy(days=1), actor=TEST_ACTOR)
        for handle in (ZEBRA, OKAPI):
            enrol(store, handle, DEVICES[handle][0])
        store.batches = {  # type: ignore[attr-defined]
            "today": batch(DEVICES[ZEBRA][0], "TODAY-TYPING", time.time_ns(), session="s-today"),
            "straddle": batch(DEVICES[ZEBRA][0], "ACROSS-MIDNIGHT", ns(midnight(day(2))) - 7_500_000,
                              session="s-straddle"),
            "later": batch(DEVICES[OKAPI][0], "DAY-AFTER-TOMORROW", ns(midnight(day(2))) + 3600 * NS,
                           session="s-later"),
        }
        for b in store.batches.values():  # type: ignore[attr-defined]
            store.write_batch(b)
        yield store


def test_a_partition_goes_exactly_when_its_last_moment_is_retention_days_old(store: EventStore) -> None:
    data_dir = store.data_dir
    assert partitions(data_dir) == [f"date={day(n)}" for n in (0, 1, 2)]
    # Today's last moment is day+1 00:00; one day after that is day+2 00:00.
    just_before = midnight(day(2)) - dt.timedelta(microseconds=1)
    assert store.apply_retention(just_before, TEST_ACTOR) == []
    assert partitions(data_dir) == [f"date={day(n)}" for n in (0, 1, 2)]

    (deleted,) = store.apply_retention(midnight(day(2)), TEST_ACTOR)
    assert (deleted.date, deleted.files, deleted.events, deleted.sessions) == (day(0), 1, 13, ["s-today"])
    assert partitions(data_dir) == [f"date={day(n)}" for n in (1, 2)]
    assert "s-today" not in {s.session_id for s in store.sessions()}
    assert store.apply_retention(midnight(day(2)), TEST_ACTOR) == []  # nothing left to do: nothing logged

    (deleted,) = store.apply_retention(midnight(day(3)) + dt.timedelta(hours=5), TEST_ACTOR)
    assert deleted.date == day(1) and deleted.sessions == ["s-straddle"]
    events = store.read_events(**READ)
    assert sorted(set(events.column("session_id").to_pylist())) == ["s-later", "s-straddle"]
    assert min(events.column("t_wall_ns").to_pylist()) >= ns(midnight(day(2)))
    # The session that straddled midnight keeps its day+2 part, with its counts recomputed.
    (straddle,) = [s for s in store.sessions() if s.session_id == "s-straddle"]
    kept = [t for t, s in zip(events.column("t_wall_ns").to_pylist(), events.column("session_id").to_pylist())
            if s == "s-straddle"]
    assert (straddle.n_events, straddle.first_t_wall_ns, straddle.last_t_wall_ns) == (len(kept), min(kept), max(kept))
    assert len(kept) == 8 and deleted.events == 8  # 16 events, 7.5 ms across midnight at 1 ms apart
    assert {d.device_id: d.n_events for d in store.devices()} == {DEVICES[ZEBRA][0]: len(kept),
                                                                 DEVICES[OKAPI][0]: 19}
    # A late retry of a batch whose events were deleted is a duplicate, not stored again.
    repeat = store.write_batch(store.batches["today"])  # type: ignore[attr-defined]
    assert repeat.duplicate and repeat.stored == 0
    assert partitions(data_dir) == [f"date={day(2)}"]


@sqlite_only
def test_each_deletion_is_in_the_audit_log_with_what_went_and_why(store: EventStore) -> None:
    now = midnight(day(3)) + dt.timedelta(minutes=1)
    deleted = store.apply_retention(now, "ops:retention-check")
    entries = store.audit_entries(action="retention.delete")
    assert [e.target for e in entries] == [f"partition:date={d.date}" for d in deleted] == [
        f"partition:date={day(0)}", f"partition:date={day(1)}"]
    zebra_id = store.employee(ZEBRA).employee_id
    for entry, d in zip(entries, deleted):
        assert entry.actor == "ops:retention-check"
        assert entry.reason == "older than retention_days=1 of policy version 1"
        assert entry.details == {"date": d.date.isoformat(), "files": 1, "unlisted_files": 0, "events": d.events,
                                 "sessions": 1, "employee_ids": [zebra_id], "retention_days": 1,
                                 "policy_version": 1, "as_of": "%s" % now.isoformat(timespec="microseconds")}
    assert store.verify_audit_chain() is None


@sqlite_only
def test_a_dry_run_deletes_and_logs_nothing(store: EventStore) -> None:
    before = (partitions(store.data_dir), len(store.audit_entries()))
    planned = store.apply_retention(midnight(day(3)), TEST_ACTOR, dry_run=True)
    assert [(d.date, d.files) for d in planned] == [(day(0), 1), (day(1), 1)]
    assert (partitions(store.data_dir), len(store.audit_entries())) == before
    assert [(d.date, d.files, d.events) for d in store.apply_retention(midnight(day(3)), TEST_ACTOR)] == [
        (d.date, d.files, d.events) for d in planned]


@sqlite_only
def test_retention_follows_the_current_policy(store: EventStore) -> None:
    store.set_policy(policy(days=30, version=2), actor=TEST_ACTOR, note="keep a month")
    assert store.apply_retention(midnight(day(10)), TEST_ACTOR) == []
    assert [d.date for d in store.apply_retention(midnight(day(31)), TEST_ACTOR)] == [day(0)]


@sqlite_only
def test_time_must_be_timezone_aware(store: EventStore) -> None:
    with pytest.raises(InvalidInput, match="timezone-aware"):
        store.apply_retention(dt.datetime(2030, 1, 1), TEST_ACTOR)


def test_files_left_by_a_crash_mid_deletion_are_never_read_and_go_on_a_later_run(
        store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from deskcorder.store._events._backends import LocalEventFiles

    def disk_fails(files: LocalEventFiles, keys: list[str]) -> int:
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as patched:
        patched.setattr(LocalEventFiles, "delete", disk_fails)
        with pytest.raises(StoreError, match="run `deskcorder retention apply` again"):
            store.apply_retention(midnight(day(2)), TEST_ACTOR)
    # The manifest no longer lists the partition: its file is still there, but nobody reads it.
    (left,) = (store.data_dir / "events" / f"date={day(0)}").rglob("*.parquet")
    assert "s-today" not in set(store.read_events(**READ).column("session_id").to_pylist())
    assert len(store.audit_entries(action="retention.delete")) == 1
    # Young unlisted files may be a batch being written right now: left alone, and nothing logged.
    assert store.apply_retention(midnight(day(2)), TEST_ACTOR) == []
    assert left.exists() and len(store.audit_entries(action="retention.delete")) == 1
    two_hours_ago = time.time() - 7200
    os.utime(left, (two_hours_ago, two_hours_ago))
    (deleted,) = store.apply_retention(midnight(day(2)), TEST_ACTOR)
    assert (deleted.date, deleted.files, deleted.events) == (day(0), 1, 0)
    assert not left.exists() and f"date={day(0)}" not in partitions(store.data_dir)
    assert store.audit_entries(action="retention.delete")[-1].details["unlisted_files"] == 1


@sqlite_only
def test_the_timer_applies_retention_in_the_background_and_reports_each_deletion(store: EventStore) -> None:
    lines: list[str] = []
    timer = RetentionTimer(store, interval_s=3600, clock=lambda: midnight(day(3)), report=lines.append)
    timer.start()
    deadline = time.monotonic() + 20
    while timer.runs < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    timer.stop()
    assert lines == [f"deskcorder retention: deleted date={day(0)}: 1 files, 13 events, 1 sessions "
                     f"(audited as retention.delete)",
                     f"deskcorder retention: deleted date={day(1)}: 1 files, 8 events, 1 sessions "
                     f"(audited as retention.delete)"]
    assert partitions(store.data_dir) == [f"date={day(2)}"]
    assert {e.actor for e in store.audit_entries(action="retention.delete")} == {"collector:retention"}


@sqlite_only
def test_a_failing_run_does_not_stop_the_timer(store: EventStore) -> None:
    timer = RetentionTimer(store, interval_s=0.05, clock=lambda: dt.datetime(2030, 1, 1))  # naive: refused
    timer.start()
    deadline = time.monotonic() + 20
    while timer.runs < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    timer.stop()
    assert timer.runs >= 3 and partitions(store.data_dir) == [f"date={day(n)}" for n in (0, 1, 2)]


def test_deskcorder_serve_applies_retention_at_start_and_prints_what_it_deleted(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    three_days_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)
    with EventStore(data_dir) as store:
        store.set_policy(policy(days=1), actor=TEST_ACTOR)
        enrol(store, ZEBRA, DEVICES[ZEBRA][0])
        # As if consent had been given a week ago (see the module docstring).
        with store._engine.begin() as conn:
            conn.execute(update(consents).values(recorded_at=dt.datetime.now(dt.timezone.utc)
                                                 - dt.timedelta(days=7)))
        store.write_batch(batch(DEVICES[ZEBRA][0], "THREE-DAYS-OLD", ns(three_days_ago)))
        store.write_batch(batch(DEVICES[ZEBRA][0], "FRESH", time.time_ns()))
    old = f"date={three_days_ago.date()}"
    assert old in partitions(data_dir)
    proc = subprocess.Popen([sys.executable, "-m", "deskcorder", "serve", "--data-dir", str(data_dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = _read_until(proc, re.compile(r"deskcorder retention: deleted (\S+): .*"), 30)
    finally:
        _stop(proc)
    assert line.group(1) == old and "15 events" in line.group(0)
    assert partitions(data_dir) == [f"date={dt.datetime.now(dt.timezone.utc).date()}"]
    with EventStore(data_dir) as store:
        (entry,) = store.audit_entries(action="retention.delete")
        assert entry.actor == "collector:retention" and entry.details["events"] == 15
        assert [e.action for e in store.audit_entries(limit=1)] == ["retention.delete"]
        assert {t for t in store.read_events(**READ).column("window_title").to_pylist() if t} == {"FRESH"}
