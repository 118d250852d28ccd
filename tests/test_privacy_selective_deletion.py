"""Deleting one session or one UTC day of one's own events: gone from every byte, with erasure's guarantee.

zebra-person records two sessions with distinct typed markers, one of them continued in a batch that holds
both; okapi-person records one. Deleting the second session must leave its marker in no file under the data
dir (event files, control.db, its WAL), no copy of the old files readable by any key left, no dataset built
afterwards holding it, and everything else there and readable. The portal does it over real HTTP for the
logged-in employee only; an admin does it with `deskcorder erase --session/--day`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from deskcorder.events import events_to_columns
from deskcorder.store import DeletionReport, EventStore, InvalidInput, NotFound, StoreError, TamperedData
from deskcorder.store._events._layout import read_parquet
from deskcorder.store._events._sealed import sealed_key_id, unseal
from deskcorder.store._people._employees import unwrap_key
from deskcorder.wire import MSGPACK, decode_batch, encode_batch

from .helpers import READ, TEST_ACTOR, decrypted_file, enrol, next_utc_midnight_ns, start_collector
from .privacy_rig import database_url  # noqa: F401  (fixture of open_store)
from .privacy_rig import DEVICES, OKAPI, TYPED, ZEBRA, cli, clean_error, disk_bytes, rows_mentioning, typed_events
from .privacy_rig import populate, typed_text, write_typing
from .test_portal_auth import csrf_of, log_in, portal_cli, post_events, typing_events
from .test_privacy_erasure import wrapped_keys
from .s3_rig import s3_bucket_url, s3_endpoint  # noqa: F401  (fixtures: the object-store backend)
from .test_store_event_store import events_url  # noqa: F401  (fixture: local disk, and an object store)

KEEP, GONE = "KEEPMARKER-SESSION-111", "GONEMARKER-SESSION-222"
NS_PER_DAY = 86_400 * 10**9


def write_both(store: EventStore, device_id: str, keep: str, gone: str, t0: int) -> None:
    """One batch holding the rest of session ``keep`` and all of session ``gone``: a file shared by both."""
    rest = [dataclasses.replace(e, seq=e.seq + 100) for e in typed_events(keep, KEEP, t0 + 10**9)]
    events = rest + typed_events(gone, GONE, t0 + 2 * 10**9)
    body = encode_batch(uuid.uuid4().hex, device_id, events_to_columns(events), MSGPACK)
    store.write_batch(decode_batch(body, MSGPACK))


@pytest.fixture
def recorded(tmp_path: Path) -> dict[str, Any]:
    """okapi and zebra as in privacy_rig, and zebra's two marked sessions on their desk."""
    data_dir = tmp_path / "data"
    device = DEVICES[ZEBRA][0]
    with EventStore(data_dir) as store:
        populate(store, portal=False)
        keep = write_typing(store, device, KEEP)
        gone = uuid.uuid4().hex
        write_both(store, device, keep, gone, time.time_ns())
    return {"data_dir": data_dir, "keep": keep, "gone": gone}


def _typed(plain_file: bytes) -> str:
    return "".join(c or "" for c in read_parquet(plain_file).column("char").to_pylist())


def session_text(store: EventStore, session_id: str) -> str:
    return typed_text(store.read_events(**READ, session_id=session_id))


def test_a_deleted_session_is_in_no_byte_on_disk_and_no_copy_of_the_old_files_opens(
        recorded: dict[str, Any], tmp_path: Path) -> None:
    data_dir, keep, gone = recorded["data_dir"], recorded["keep"], recorded["gone"]
    backup = tmp_path / "stolen-backup"
    with EventStore(data_dir) as store:
        zebra_id = store.employee(ZEBRA).employee_id
        old_key = wrapped_keys(store)[zebra_id]
        assert session_text(store, gone) == GONE and session_text(store, keep) == KEEP * 2
        shutil.copytree(data_dir / "events", backup)  # copies of their files that no deletion can reach
        copies = [(p.read_bytes(), "events/" + p.relative_to(backup).as_posix()) for p in backup.rglob("*.parquet")
                  if sealed_key_id(p.read_bytes(), "x") == old_key.key_id]
        raw_old = unwrap_key(store._wrapper, old_key)
        # The control: the old files, opened with the old key, hold the session (read with the file format's own
        # reader: format 2 keeps typed characters as key codes, so the text is in no run of plaintext bytes).
        assert any(GONE in _typed(unseal(d, raw_old, old_key.key_id, rel)) for d, rel in copies)

        report = store.delete_events(ZEBRA, session_id=gone, actor=TEST_ACTOR, reason="ticket DPO-30")
        assert isinstance(report, DeletionReport)
        assert (report.what, report.target, report.events, report.sessions) == ("session", gone, len(GONE) + 1, 1)
        assert report.files_rewritten == 4 and report.files_dropped == 0 and report.wal_truncated

        # Every byte under the data dir, the SQLite WAL included (the store is still open, so it is there).
        assert (data_dir / "control.db-wal").exists()
        everything = disk_bytes(data_dir)
        assert GONE.encode() not in everything and GONE.split("-")[0].encode() not in everything
        assert old_key.wrapped not in everything
        # Decrypted, what is stored now holds the kept session and not the deleted one.
        now_stored = [decrypted_file(store, p.relative_to(data_dir).as_posix())
                      for p in (data_dir / "events").rglob("*.parquet")]
        assert not any(GONE.encode() in plain or GONE in _typed(plain) for plain in now_stored)
        assert any(KEEP in _typed(plain) for plain in now_stored)
        # The stolen copies open under no key the store still has.
        remaining = [unwrap_key(store._wrapper, k) for k in wrapped_keys(store).values()]
        for data, rel in copies:
            for key in remaining:
                with pytest.raises(TamperedData):
                    unseal(data, key, sealed_key_id(data, rel), rel)

        # Everything else is there and readable; the session is gone from every listing and table.
        assert session_text(store, keep) == KEEP * 2
        assert session_text(store, gone) == ""
        assert typed_text(store.read_events(**READ, employee=OKAPI)) == TYPED[OKAPI]
        zebra = typed_text(store.read_events(**READ, employee=ZEBRA))  # in session id order, which is random
        assert len(zebra) == 2 * len(TYPED[ZEBRA] + KEEP) and zebra.count(TYPED[ZEBRA]) == 2 and KEEP * 2 in zebra
        assert gone not in {s.session_id for s in store.sessions()}
        assert set(rows_mentioning(store, gone)) == {"audit_log"}  # the entry that says what was deleted
        (entry,) = store.audit_entries(action="events.delete")
        assert (entry.target, entry.reason, entry.details["session"]) == (f"employee:{zebra_id}", "ticket DPO-30",
                                                                          gone)
        assert store.verify_audit_chain() is None
        with pytest.raises(NotFound):  # deleting it again: nothing of that session is left
            store.delete_events(ZEBRA, session_id=gone, actor=TEST_ACTOR, reason="again")

    build = subprocess.run([sys.executable, "-m", "deskcorder", "dataset", "build", "--data-dir", str(data_dir),
                            "--out", str(tmp_path / "ds")], capture_output=True, text=True, timeout=180)
    assert build.returncode == 0, build.stderr
    dataset = b"".join(p.read_bytes() for p in (tmp_path / "ds").rglob("*") if p.is_file())
    assert dataset and GONE.split("-")[0].encode() not in dataset
    assert KEEP.split("-")[0].encode() in dataset  # the control: a kept marker does reach the dataset


def test_a_session_is_deleted_on_every_backend(tmp_path: Path, database_url: str | None,
                                               events_url: str | None) -> None:
    """SQLite and PostgreSQL, local disk and an object store: the rewritten files are the only ones left."""
    def open_store() -> EventStore:
        return EventStore(tmp_path / "data", database_url=database_url, events_url=events_url)

    store = open_store()
    populate(store, portal=False)
    device = DEVICES[ZEBRA][0]
    keep, gone = write_typing(store, device, KEEP), uuid.uuid4().hex
    write_both(store, device, keep, gone, time.time_ns())
    zebra_id = store.employee(ZEBRA).employee_id
    report = store.delete_events(ZEBRA, session_id=gone, actor=TEST_ACTOR, reason="ticket DPO-33")
    assert (report.events, report.files_rewritten, report.files_deleted) == (len(GONE) + 1, 4, 4)
    new_key = wrapped_keys(store)[zebra_id].key_id
    zebra_files = [f.key for d in DEVICES[ZEBRA] for f in store.files.list("events") if f"device={d}/" in f.key]
    assert len(zebra_files) == 4 and all(f.endswith(f"~{new_key}.parquet") for f in zebra_files)
    store.close()
    store = open_store()  # what was committed, read back by a new process's store
    assert session_text(store, keep) == KEEP * 2 and session_text(store, gone) == ""
    assert typed_text(store.read_events(**READ, employee=OKAPI)) == TYPED[OKAPI]
    assert [s.n_events for s in store.sessions() if s.session_id == keep] == [2 * (len(KEEP) + 1)]
    assert store.verify_audit_chain() is None
    store.close()


def test_a_batch_sealed_under_the_replaced_key_is_refused_and_its_retry_is_stored(
        recorded: dict[str, Any]) -> None:
    """A batch written while a deletion replaces the key: its commit is refused (the collector answers 503),
    its file removed, and the agent's retry is sealed under the new key and reads back."""
    data_dir, gone = recorded["data_dir"], recorded["gone"]
    device = DEVICES[ZEBRA][0]
    session = uuid.uuid4().hex
    body = encode_batch("late-batch-0001", device, events_to_columns(typed_events(session, "LATEWORD",
                                                                                   time.time_ns())), MSGPACK)
    with EventStore(data_dir) as writer, EventStore(data_dir) as admin:
        put = writer.files.put

        def put_then_delete(key: str, data: bytes) -> None:  # the deletion commits between write and commit
            put(key, data)
            admin.delete_events(ZEBRA, session_id=gone, actor=TEST_ACTOR, reason="ticket DPO-31")

        writer.files.put = put_then_delete  # type: ignore[method-assign]
        with pytest.raises(StoreError, match="retry the batch"):
            writer.write_batch(decode_batch(body, MSGPACK))
        writer.files.put = put  # type: ignore[method-assign]
        assert not list((data_dir / "events").rglob("late-batch-0001-*"))
        assert writer.write_batch(decode_batch(body, MSGPACK)).stored == len("LATEWORD") + 1
        assert session_text(writer, session) == "LATEWORD"


def test_one_utc_day_is_deleted_with_the_cli_and_a_session_past_midnight_keeps_its_other_day(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    device = DEVICES[ZEBRA][0]
    day1 = next_utc_midnight_ns()
    date1 = dt.datetime.fromtimestamp(day1 / 10**9, dt.timezone.utc).date()
    with EventStore(data_dir) as store:
        populate(store, portal=False)
        first = write_typing(store, device, "DAYONEMARK-1", t0=day1 + 3600 * 10**9)
        spanning = write_typing(store, device, "SPANMARKER-22", t0=day1 + NS_PER_DAY - 5 * 10**6)
        second = write_typing(store, device, "DAYTWOMARK-3", t0=day1 + NS_PER_DAY + 3600 * 10**9)

    # Refusals name the option, and change nothing.
    clean_error(cli(data_dir, "erase", "--employee", ZEBRA, "--day", "2026-02-30", "--reason", "t", "--yes"),
                "--day", "YYYY-MM-DD")
    clean_error(cli(data_dir, "erase", "--employee", ZEBRA, "--day", date1.isoformat(), "--session", first,
                    "--reason", "t", "--yes"), "--session", "--day")
    clean_error(cli(data_dir, "erase", "--employee", ZEBRA, "--day", "2020-01-01", "--reason", "t", "--yes"),
                "nothing is recorded", "2020-01-01")
    clean_error(cli(data_dir, "erase", "--employee", OKAPI, "--session", first, "--reason", "t", "--yes"),
                "no recorded session")
    done = cli(data_dir, "erase", "--employee", ZEBRA, "--day", date1.isoformat(), "--reason", "ticket DPO-32",
               "--yes")
    assert done.returncode == 0, done.stderr
    assert f"deleted day {date1.isoformat()} (UTC) of {ZEBRA}" in done.stdout

    assert b"DAYONEMARK" not in disk_bytes(data_dir)
    with EventStore(data_dir) as store:
        left = {s.session_id: s for s in store.sessions(employee=ZEBRA)}
        assert first not in left and second in left and spanning in left
        # The spanning session lost the characters typed before midnight and kept the rest.
        kept = session_text(store, spanning)
        assert 0 < len(kept) < len("SPANMARKER-22") and "SPANMARKER-22".endswith(kept)
        assert left[spanning].first_t_wall_ns >= day1 + NS_PER_DAY
        assert left[spanning].n_events == store.read_events(**READ, session_id=spanning).num_rows
        assert session_text(store, second) == "DAYTWOMARK-3"
        assert typed_text(store.read_events(**READ, employee=OKAPI)) == TYPED[OKAPI]
        assert not list((data_dir / "events").glob(f"date={date1.isoformat()}/device={device}"))
        (entry,) = store.audit_entries(action="events.delete")
        assert entry.details["day"] == date1.isoformat() and entry.details["sessions"] == 1
        for bad, field in [({}, "session"), ({"session_id": "s", "day": "2026-01-01"}, "session"),
                           ({"day": "tomorrow"}, "day"), ({"session_id": ""}, "session")]:
            with pytest.raises(InvalidInput) as caught:
                store.delete_events(ZEBRA, actor=TEST_ACTOR, reason="t", **bad)
            assert caught.value.field == field, bad


# -- the portal, over real HTTP ------------------------------------------------------------------------

PASSWORDS = {"alice": "alice-correct-horse", "bob": "bob-battery-staple"}


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path / "data"
    with EventStore(data_dir) as store:
        for handle in PASSWORDS:
            enrol(store, handle, f"device-{handle}")
    for handle, password in PASSWORDS.items():
        assert portal_cli(data_dir, "set-password", handle, password=password).returncode == 0
    with start_collector(data_dir) as url:
        post_events(url, "batch-alice-1", "device-alice", typing_events("sess-alice-1", "ALICEKEEPS", "t"))
        post_events(url, "batch-alice-2", "device-alice", typing_events("sess-alice-2", "ALICEDROPS", "t"))
        post_events(url, "batch-bob-1", "device-bob", typing_events("sess-bob-1", "BOBSTAYS", "t"))
        yield {"url": url, "data_dir": data_dir}


def chars(events: Any) -> str:
    """The characters typed (typing_events also presses enter, which types none)."""
    return "".join(c for c in events.column("char").to_pylist() if c)


def own_sessions(data_dir: Path, handle: str) -> set[str]:
    with EventStore(data_dir) as store:
        return {s.session_id for s in store.sessions(employee=handle)}


def test_an_employee_deletes_one_own_session_from_the_portal_and_only_their_own(portal: dict[str, Any]) -> None:
    url, data_dir = portal["url"], portal["data_dir"]
    alice = log_in(url, "alice", PASSWORDS["alice"])
    page = alice.get("/me/sessions")
    assert 'action="/me/delete"' in page.text and 'value="sess-alice-2"' in page.text
    token = csrf_of(page.text)

    # No login, no CSRF token, or another login's: refused, nothing deleted.
    assert httpx.post(f"{url}/me/delete", data={"session": "sess-alice-2"}).status_code == 401
    bob = log_in(url, "bob", PASSWORDS["bob"])
    for form in [{"session": "sess-alice-2"}, {"session": "sess-alice-2", "csrf_token": csrf_of(bob.get("/me").text)}]:
        assert alice.post("/me/delete", data=form).status_code == 403
    # Another person's session answers like one that does not exist, and changes nothing.
    for other in ["sess-bob-1", "no-such-session"]:
        r = alice.post("/me/delete", data={"session": other, "csrf_token": token})
        assert r.status_code == 404 and "Nothing was deleted" in r.text
    assert own_sessions(data_dir, "bob") == {"sess-bob-1"}
    # Malformed requests: 422 naming the field (JSON for API clients).
    api = httpx.Client(base_url=url, cookies=alice.cookies, timeout=15)
    for form, field in [({}, "session"), ({"day": "2026-13-01"}, "day"),
                        ({"session": "sess-alice-2", "day": "2026-01-01"}, "session")]:
        r = api.post("/me/delete", data={**form, "csrf_token": token})
        assert r.status_code == 422 and r.json()["field"] == field, (form, r.text)
        r = alice.post("/me/delete", data={**form, "csrf_token": token})
        assert r.status_code == 422 and f"field: {field}" in r.text
    assert own_sessions(data_dir, "alice") == {"sess-alice-1", "sess-alice-2"}

    r = alice.post("/me/delete", data={"session": "sess-alice-2", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"].startswith("/me/sessions?deleted=")
    page = alice.get(r.headers["location"]).text
    assert "sess-alice-2" not in page and "sess-alice-1" in page
    deleted = int(r.headers["location"].rpartition("=")[2])
    assert deleted > 0 and f"Deleted: {deleted} events." in page  # the person is told what went
    assert alice.get("/me/sessions", params={"deleted": "-1"}).status_code == 422
    assert own_sessions(data_dir, "alice") == {"sess-alice-1"}
    assert b"ALICEDROPS" not in disk_bytes(data_dir)
    with EventStore(data_dir) as store:
        assert chars(store.read_events(**READ, employee="alice")) == "ALICEKEEPS"
        assert chars(store.read_events(**READ, employee="bob")) == "BOBSTAYS"
        (entry,) = store.audit_entries(action="events.delete")
        alice_ref = f"employee:{store.employee('alice').employee_id}"
        assert (entry.actor, entry.target, entry.details["session"]) == (alice_ref, alice_ref, "sess-alice-2")


def test_an_employee_deletes_one_day_from_the_portal(portal: dict[str, Any]) -> None:
    url, data_dir = portal["url"], portal["data_dir"]
    tomorrow = next_utc_midnight_ns() + 3600 * 10**9
    with EventStore(data_dir) as store:  # stamped tomorrow, past the collector's clock check: written directly
        write_typing(store, "device-alice", "TOMORROWWORD", t0=tomorrow, session="sess-alice-tomorrow")
    day = dt.datetime.fromtimestamp(tomorrow / 10**9, dt.timezone.utc).date().isoformat()
    alice = log_in(url, "alice", PASSWORDS["alice"])
    token = csrf_of(alice.get("/me/sessions").text)
    r = alice.post("/me/delete", data={"day": day, "csrf_token": token})
    assert r.status_code == 303, r.text
    assert own_sessions(data_dir, "alice") == {"sess-alice-1", "sess-alice-2"}
    r = alice.post("/me/delete", data={"day": day, "csrf_token": token})
    assert r.status_code == 404 and "nothing is recorded" in r.text
