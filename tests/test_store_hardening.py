"""The store's promises under attack (issue 9): concurrent password guessing, events stamped in the future,
and who can read the files of a data dir. Each test starts real things: a real `deskcorder serve`, real HTTP,
SQLite and PostgreSQL.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import stat
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore, InvalidInput
from deskcorder.store._people._login_throttle import FREE_FAILURES
from deskcorder.wire import MSGPACK, decode_batch, encode_batch

from .helpers import READ, TEST_ACTOR, _stop, auth_headers, enrol, start_collector
from .test_fleet_jetstream import nats_url, pg_url, start_fleet_collector, stream, stream_state  # noqa: F401
from .test_store_event_store import database_url  # noqa: F401  (a fixture: SQLite, and PostgreSQL)

NS = 1_000_000_000
HTML = {"Accept": "text/html,application/xhtml+xml"}
PASSWORD = "dave-right-password"
GUESSERS = 60


def _serve_args(database_url: str | None) -> tuple[str, ...]:  # noqa: F811
    return ("--database-url", database_url) if database_url else ()


def typed(session: str, t0: int, text: str = "hello") -> list[Event]:
    events = [Event(session, 0, 0, t0, EventKind.FOCUS, app_class="Editor", app_process="editor",
                    window_title="notes")]
    events += [Event(session, 1 + i, 1 + i, t0 + (1 + i) * 1_000_000, EventKind.KEY_DOWN, key=c, char=c)
               for i, c in enumerate(text)]
    return events


def post(url: str, device_id: str, events: list[Event], batch_id: str | None = None) -> httpx.Response:
    body = {"v": 1, "batch_id": batch_id or uuid.uuid4().hex, "device_id": device_id,
            "events": events_to_columns(events)}
    return httpx.post(f"{url}/v1/batches", json=body, headers=auth_headers(url, device_id), timeout=30)


# -- failure 4: the login lock-out holds under concurrency -------------------------------------------

def _login_form(url: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, headers=HTML, timeout=60)
    html = client.get("/login").text
    marker = 'name="csrf_token" value="'
    return client, html[html.index(marker) + len(marker):].split('"', 1)[0]


def test_sixty_wrong_passwords_at_once_get_no_more_checks_than_five_in_a_row(
        tmp_path: Path, database_url: str | None) -> None:  # noqa: F811
    data_dir = tmp_path / "data"
    with EventStore(data_dir, database_url=database_url) as store:
        enrol(store, "dave", "device-dave")
        store.portal.set_password("dave", PASSWORD, role="employee", actor=TEST_ACTOR)
    with start_collector(data_dir, *_serve_args(database_url)) as url:
        forms = [_login_form(url) for _ in range(GUESSERS)]  # fetched first, so the POSTs leave together
        start = threading.Barrier(GUESSERS)

        def guess(i: int) -> int:
            client, csrf = forms[i]
            start.wait()
            return client.post("/login", data={"login": "dave", "password": f"guess-{i}",
                                               "csrf_token": csrf}).status_code

        with concurrent.futures.ThreadPoolExecutor(GUESSERS) as pool:
            statuses = list(pool.map(guess, range(GUESSERS)))
        # A 401 is an answer after a password check; a 429 is a refusal before any check.
        assert set(statuses) <= {401, 429}, sorted(statuses)
        assert 1 <= statuses.count(401) <= FREE_FAILURES, sorted(statuses)
        client, csrf = _login_form(url)  # and the right password waits out the lock like any other
        assert client.post("/login", data={"login": "dave", "password": PASSWORD,
                                           "csrf_token": csrf}).status_code == 429
        for client, _ in forms:
            client.close()


# -- failure 2: events stamped in the future are refused, and retention reaches every date ------------

YEAR_2200_NS = int(dt.datetime(2200, 1, 1, 9, tzinfo=dt.timezone.utc).timestamp()) * NS


def stamped(events: list[Event], row: int, t_wall_ns: int) -> list[Event]:
    events[row].t_wall_ns = t_wall_ns
    return events


def test_a_batch_stamped_ahead_of_the_collectors_clock_is_refused_with_422_naming_the_row(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EventStore(data_dir) as store:
        enrol(store, "alice", "device-alice")
    with start_collector(data_dir, "--max-clock-skew", "300") as url:  # the default, stated
        now = time.time_ns()
        for ahead in (now + 365 * 86400 * NS, YEAR_2200_NS, now + 360 * NS):
            r = post(url, "device-alice", stamped(typed("s-future", now), 3, ahead))
            assert r.status_code == 422, r.text
            assert (r.json()["field"], r.json()["row"]) == ("events.t_wall_ns", 3), r.text
            assert "ahead of this collector's clock" in r.json()["error"], r.text
        # A desk a minute fast is within the skew.
        assert post(url, "device-alice", typed("s-fast-clock", now + 60 * NS)).status_code == 200
    with start_collector(data_dir, "--max-clock-skew", "3600") as url:  # configurable
        now = time.time_ns()
        assert post(url, "device-alice", typed("s-half-hour", now + 1800 * NS)).status_code == 200
        assert post(url, "device-alice", typed("s-two-hours", now + 7200 * NS)).status_code == 422
    with EventStore(data_dir) as store:
        store.record_consent("alice", "withdraw", policy_version=None, method="api", actor=TEST_ACTOR)
        # Nothing stamped after the withdrawal is stored: none of the future batches got in.
        assert set(store.read_events(**READ).column("session_id").to_pylist()) == {"s-fast-clock", "s-half-hour"}


def test_a_fleet_collector_refuses_a_batch_from_the_future_before_publishing_it(
        tmp_path: Path, nats_url: str, pg_url: str, stream: str) -> None:  # noqa: F811
    data_dir = tmp_path / "data"
    with EventStore(data_dir, database_url=pg_url) as store:
        enrol(store, "alice", "device-alice")
    proc, url = start_fleet_collector(data_dir, nats_url, stream, "--database-url", pg_url, "--max-clock-skew", "300")
    try:
        r = post(url, "device-alice", stamped(typed("s-future", time.time_ns()), 2, YEAR_2200_NS))
        assert r.status_code == 422 and r.json()["row"] == 2, r.text
        assert post(url, "device-alice", typed("s-now", time.time_ns())).status_code == 200
        assert stream_state(nats_url, stream)["messages"] == 1  # only the batch of now was published
    finally:
        _stop(proc)


def _batch(device_id: str, events: list[Event]):  # noqa: ANN202
    return decode_batch(encode_batch(uuid.uuid4().hex, device_id, events_to_columns(events), MSGPACK), MSGPACK)


def _partitions(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "events").iterdir())


def _leftover(data_dir: Path, date: str, device_id: str) -> None:
    """A file a crash left in a date folder, two hours old (what retention and erasure must find too)."""
    path = data_dir / "events" / f"date={date}" / f"device={device_id}" / "crashed-batch.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"sealed bytes of a batch that never reached the manifest")
    os.utime(path, (time.time() - 7200, time.time() - 7200))


def test_retention_deletes_partitions_dated_ahead_of_the_clock_and_in_1970_whatever_the_manifest_says(
        tmp_path: Path, database_url: str | None) -> None:  # noqa: F811
    data_dir = tmp_path / "data"
    now = dt.datetime.now(dt.timezone.utc)
    # What a store without the clock check took in: a device that stamped its events in 2200.
    with EventStore(data_dir, database_url=database_url) as store:
        enrol(store, "alice", "device-alice")
        store.write_batch(_batch("device-alice", typed("s-2200", YEAR_2200_NS)))
        store.write_batch(_batch("device-alice", typed("s-now", time.time_ns())))
    _leftover(data_dir, "1970-01-01", "device-alice")
    _leftover(data_dir, "2262-04-11", "device-alice")  # the last date an int64 of nanoseconds reaches
    assert _partitions(data_dir) == ["date=1970-01-01", f"date={now.date()}", "date=2200-01-01", "date=2262-04-11"]
    with EventStore(data_dir, database_url=database_url, max_clock_skew_s=300) as store:
        deleted = store.apply_retention(now, TEST_ACTOR)
        assert [(d.date.isoformat(), d.files, d.events) for d in deleted] == [
            ("1970-01-01", 1, 0), ("2200-01-01", 1, 6), ("2262-04-11", 1, 0)]
        assert _partitions(data_dir) == [f"date={now.date()}"]
        assert set(store.read_events(**READ).column("session_id").to_pylist()) == {"s-now"}
        assert [s.session_id for s in store.sessions()] == ["s-now"]
        ahead = [e.details.get("ahead_of_clock", False) for e in store.audit_entries(action="retention.delete")]
        assert ahead == [False, True, True]
        assert store.apply_retention(now, TEST_ACTOR) == []  # nothing left, nothing logged


def test_erasure_deletes_a_persons_files_in_every_date_folder_from_1970_to_2262(
        tmp_path: Path, database_url: str | None) -> None:  # noqa: F811
    data_dir = tmp_path / "data"
    with EventStore(data_dir, database_url=database_url) as store:
        enrol(store, "alice", "device-alice")
        enrol(store, "bob", "device-bob")
        store.write_batch(_batch("device-alice", typed("s-alice-2200", YEAR_2200_NS)))
        store.write_batch(_batch("device-bob", typed("s-bob", time.time_ns())))
        for date in ("1970-01-01", "2262-04-11"):
            _leftover(data_dir, date, "device-alice")
        report = store.erase_employee("alice", TEST_ACTOR, "test erasure")
        assert report.files_deleted == 3
        assert not [p for p in (data_dir / "events").rglob("*") if "device-alice" in str(p)]
        assert [s.session_id for s in store.sessions()] == ["s-bob"]


# -- failure 8: a data dir is readable by its owner only, whatever the umask ------------------------

@pytest.mark.parametrize("umask", [pytest.param(0o022, id="umask-022"), pytest.param(0o000, id="umask-000")])
def test_after_a_real_ingest_nothing_in_the_data_dir_is_open_to_group_or_others(tmp_path: Path, umask: int) -> None:
    from deskcorder.dataset import PSEUDONYM_KEY_FILE
    from deskcorder.privacy import Pseudonymizer

    data_dir = tmp_path / "new" / "data"
    old = os.umask(umask)  # this process and the collector it starts
    try:
        with start_collector(data_dir) as url:  # `serve --init` creates the store
            with EventStore(data_dir) as store:
                enrol(store, "alice", "device-alice")
            assert post(url, "device-alice", typed("s-now", time.time_ns())).status_code == 200
            Pseudonymizer.from_file(data_dir / PSEUDONYM_KEY_FILE)  # what a dataset build creates there
            # While the collector runs, SQLite's -wal and -shm are there too.
            found = {p.relative_to(data_dir).as_posix(): stat.S_IMODE(p.stat().st_mode)
                     for p in [data_dir, *data_dir.rglob("*")]}
    finally:
        os.umask(old)
    assert {"control.db", "control.db-wal", "control.db-shm", "master.key", "portal.key",
            PSEUDONYM_KEY_FILE} <= set(found), sorted(found)
    assert any(name.endswith(".parquet") for name in found), sorted(found)
    assert {name: oct(mode) for name, mode in found.items() if mode & 0o077} == {}
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
