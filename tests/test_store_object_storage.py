"""Event files in an S3-compatible object store: written, read back by a new process, erased per person,
expired by date, and never looked for in the wrong place.

The object store is a real S3 API over HTTP (``s3_rig``: moto's server); the
control database is SQLite in the data dir (and PostgreSQL where the
``database_url`` fixture runs both).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from deskcorder.store import Conflict, EventStore, InvalidInput, StoreError
from deskcorder.store._db._tables import batches

from .helpers import READ, TEST_ACTOR, _stop, decrypted_file, enrol, enrol_in, start_collector
from .privacy_rig import DEVICES, OKAPI, TYPED, ZEBRA, clean_error, cli, populate, traces, typed_text, write_typing
from .s3_rig import bucket_objects, s3_bucket_url, s3_endpoint  # noqa: F401  (fixtures)
from .test_collect_http import batch, columns, packed, post
from .test_fleet_jetstream import Writer, make_events, nats_url, pg_url, start_fleet_collector, stream  # noqa: F401
from .test_fleet_jetstream import body as fleet_body
from .test_fleet_jetstream import post as fleet_post
from .test_store_event_store import database_url  # noqa: F401  (fixture: SQLite, and PostgreSQL)

NS_PER_DAY = 86_400 * 10**9


def open_store(data_dir: Path, url: str | None, database_url: str | None = None) -> EventStore:  # noqa: F811
    return EventStore(data_dir, events_url=url, database_url=database_url)


def test_event_files_go_to_the_bucket_and_a_new_process_reads_them_back(
        tmp_path: Path, s3_bucket_url: str, database_url: str | None) -> None:  # noqa: F811
    data_dir = tmp_path / "data"
    with open_store(data_dir, s3_bucket_url, database_url) as store:
        populate(store, portal=False)
        with store._engine.connect() as conn:
            listed = sorted(p for files in conn.execute(select(batches.c.files)).scalars() for p in files)
    objects = bucket_objects(s3_bucket_url)
    assert sorted(objects) == listed and len(listed) == 3  # one file per batch, each under its manifest key
    assert all(k.startswith("events/date=") for k in listed)
    assert not (data_dir / "events").exists()  # nothing went to local disk
    for body in objects.values():  # encrypted in the bucket too
        assert body[:4] == b"DCEV" and TYPED[ZEBRA].encode() not in body and TYPED[OKAPI].encode() not in body

    # A new process, opened without the url: the control database says where the files are.
    reader = textwrap.dedent("""
        import sys
        from deskcorder.store import EventStore
        with EventStore(sys.argv[1], database_url=sys.argv[2] or None) as store:
            table = store.read_events(actor="tests", purpose="read back")
            print(store.events_url)
            print("".join(c for k, c in zip(table.column("kind").to_pylist(), table.column("char").to_pylist())
                          if k == "key_down"))
    """)
    out = subprocess.run([sys.executable, "-c", reader, str(data_dir), database_url or ""], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    url_line, typed = out.stdout.splitlines()
    assert url_line == s3_bucket_url
    assert sorted(typed) == sorted(TYPED[ZEBRA] * 2 + TYPED[OKAPI])


def test_a_store_keeps_its_location_and_refuses_another(tmp_path: Path, s3_bucket_url: str) -> None:
    with open_store(tmp_path / "local", None) as store:
        populate(store, portal=False)
    with pytest.raises(Conflict, match="event files are at .*local/events.*cannot move"):
        open_store(tmp_path / "local", s3_bucket_url)
    with open_store(tmp_path / "remote", s3_bucket_url) as store:
        pass
    with pytest.raises(Conflict, match=r"event files are at s3://.*run without --events-url"):
        open_store(tmp_path / "remote", f"file://{tmp_path / 'elsewhere'}")
    with open_store(tmp_path / "remote", None) as store:  # no url: the recorded one
        assert store.events_url == s3_bucket_url


@pytest.mark.parametrize("url, match", [
    ("bucket/prefix", "needs a scheme"),
    ("s3://b/p?access_key=AKIA&secret_key=x", "must not carry credentials"),
    ("file://relative/path", "absolute path"),
    ("s3://b/p?no_such_option=1", "cannot use the events url"),
])
def test_a_bad_events_url_is_refused_and_not_recorded(tmp_path: Path, url: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        open_store(tmp_path / "data", url)
    with open_store(tmp_path / "data", None) as store:
        assert store.events_url is None


def test_erasing_a_person_deletes_every_object_of_theirs_and_nothing_else(
        tmp_path: Path, s3_bucket_url: str, database_url: str | None) -> None:  # noqa: F811
    data_dir = tmp_path / "data"
    with open_store(data_dir, s3_bucket_url, database_url) as store:
        populate(store, portal=False)
        # A crash leftover: a file written for zebra's device whose batch never reached the manifest.
        leftover = f"events/date=2030-01-01/device={DEVICES[ZEBRA][0]}/crashed-0000000000000000.parquet"
        store.files.put(leftover, b"DCEV leftover")
        okapi_before = {k: v for k, v in bucket_objects(s3_bucket_url).items() if DEVICES[OKAPI][0] in k}
        report = store.erase_employee(ZEBRA, TEST_ACTOR, "ticket DPO-31")
        assert report.key_destroyed and report.files_deleted == 3  # two batches + the leftover
        left = bucket_objects(s3_bucket_url)
        assert left == okapi_before  # okapi's objects untouched, byte for byte
        for trace in traces(ZEBRA):
            assert not any(trace in key for key in left), trace
            assert not any(trace.encode() in body for body in left.values()), trace
        assert typed_text(store.read_events(**READ)) == TYPED[OKAPI]


def test_retention_deletes_expired_dates_from_the_bucket(tmp_path: Path, s3_bucket_url: str) -> None:
    with open_store(tmp_path / "data", s3_bucket_url) as store:
        populate(store, days=30, portal=False)
        today = dt.datetime.now(dt.timezone.utc)
        # okapi typed again 40 days later: with 30 days of retention, today's files expire then.
        later = write_typing(store, DEVICES[OKAPI][0], "LATER", t0=time.time_ns() + 40 * NS_PER_DAY)
        deleted = store.apply_retention(today + dt.timedelta(days=40), TEST_ACTOR)
        assert [d.date for d in deleted] == [today.date()] and deleted[0].files == 3
        keys = sorted(bucket_objects(s3_bucket_url))
        assert len(keys) == 1 and keys[0].startswith(f"events/date={(today + dt.timedelta(days=40)).date()}/")
        table = store.read_events(**READ)
        assert set(table.column("session_id").to_pylist()) == {later}
        assert store.apply_retention(today + dt.timedelta(days=40), TEST_ACTOR) == []  # nothing left to do


def test_an_unreachable_object_store_is_a_clean_error_and_stores_nothing(
        tmp_path: Path, s3_bucket_url: str, s3_endpoint: str) -> None:  # noqa: F811
    data_dir = tmp_path / "data"
    with open_store(data_dir, s3_bucket_url) as store:
        populate(store, portal=False)
        n_batches = len(store.sessions())
        # Point the store at a port nobody listens on (the same bucket name), as if S3 went away.
        from deskcorder.store._events._backends import ObjectStoreEventFiles

        store.files = ObjectStoreEventFiles(s3_bucket_url.replace(s3_endpoint, "127.0.0.1:9"))
        with pytest.raises(StoreError, match="cannot write s3://"):
            write_typing(store, DEVICES[OKAPI][0], "LOST")
        with pytest.raises(StoreError, match="cannot read stored events: s3://"):
            store.read_events(**READ)
    with open_store(data_dir, None) as store:  # back: nothing half-stored, everything acknowledged readable
        assert len(store.sessions()) == n_batches
        assert sorted(typed_text(store.read_events(**READ))) == sorted(TYPED[ZEBRA] * 2 + TYPED[OKAPI])


def test_a_file_copied_to_another_key_in_the_bucket_fails_authentication(tmp_path: Path, s3_bucket_url: str) -> None:
    with open_store(tmp_path / "data", s3_bucket_url) as store:
        populate(store, portal=False)
        zebra_key, okapi_key = (next(k for k in bucket_objects(s3_bucket_url) if DEVICES[h][0] in k)
                                for h in (ZEBRA, OKAPI))
        assert decrypted_file(store, okapi_key)[:4] == b"PAR1"
        store.files.put(okapi_key, store.files.get(zebra_key))  # zebra's bytes under okapi's name
        with pytest.raises(StoreError, match="restore it from a backup"):
            store.read_events(**READ)


# -- through the collector and the CLI, as a deployment runs it ----------------------------------------


def test_a_collector_stores_uploads_in_the_bucket_and_every_command_finds_them_there(
        tmp_path: Path, s3_bucket_url: str) -> None:
    data_dir = tmp_path / "data"
    enrol_in(data_dir, "alice", "device-s3")
    with start_collector(data_dir, "--events-url", s3_bucket_url, "--retention-interval", "0") as url:
        for i in range(3):
            r = post(url, packed(batch(f"s3-batch-{i:04d}", columns("sess-s3", 200, 200 * i), "device-s3")),
                     device="device-s3")
            assert r.status_code == 200 and r.json()["stored"] == 200, r.text
        again = post(url, packed(batch("s3-batch-0000", columns("sess-s3", 200, 0), "device-s3")), device="device-s3")
        assert again.json() == {"batch_id": "s3-batch-0000", "stored": 0, "duplicate": True}
    assert len(bucket_objects(s3_bucket_url)) == 3 and not (data_dir / "events").exists()

    # Commands without --events-url: the control database tells them where the files are.
    built = cli(data_dir, "dataset", "build", "--out", str(tmp_path / "ds"))
    assert built.returncode == 0, built.stderr
    assert json.loads((tmp_path / "ds" / "stats.json").read_text())["events"] == 600
    erased = cli(data_dir, "erase", "--employee", "alice", "--reason", "ticket DPO-32", "--yes")
    assert erased.returncode == 0, erased.stderr
    assert bucket_objects(s3_bucket_url) == {}
    refused = cli(data_dir, "serve", "--events-url", f"file://{tmp_path / 'other'}", "--port", "0")
    clean_error(refused, "event files are at s3://")


def test_fleet_writers_on_other_data_dirs_store_into_the_shared_bucket(
        tmp_path: Path, s3_bucket_url: str, nats_url: str, stream: str, pg_url: str) -> None:  # noqa: F811
    """Fleet mode with nothing shared on disk: PostgreSQL, NATS and the bucket are the whole state."""
    collector_dir, writer_dirs = tmp_path / "collector", [tmp_path / f"writer-{i}" for i in range(2)]
    with EventStore(collector_dir, database_url=pg_url, events_url=s3_bucket_url) as store:
        enrol(store, "fleet-s3-person", "fleet-s3-desk")
    master_key = (collector_dir / "master.key").read_text()
    proc, url = start_fleet_collector(collector_dir, nats_url, stream, "--database-url", pg_url)
    # Each writer has its own data dir (the master key comes from the environment, as from a secret store)
    # and no --events-url: the control database tells it where the files go.
    env = {"DESKCORDER_MASTER_KEY": master_key}
    writers = [Writer(d, pg_url, nats_url, stream, env=env) for d in writer_dirs]
    try:
        with httpx.Client(timeout=30) as client:
            for i in range(6):
                r = fleet_post(client, url, fleet_body(f"fleet-s3-{i:04d}", "fleet-s3-desk",
                                                       make_events("sess-fleet-s3", 300 * i, 300)))
                assert r.status_code == 200 and r.json()["queued"], r.text
        deadline = time.monotonic() + 30
        with EventStore(collector_dir, database_url=pg_url) as store:
            while len(store.read_events(**READ)) < 1800 and time.monotonic() < deadline:
                time.sleep(0.2)
            table = store.read_events(**READ)
    finally:
        for writer in writers:
            writer.stop()
        _stop(proc)
    assert table.column("seq").to_pylist() == list(range(1800))  # every acknowledged event, once
    assert len(bucket_objects(s3_bucket_url)) == 6
    for d in [collector_dir, *writer_dirs]:
        assert not (d / "events").exists()
