"""EventStore keeps each batch once, durably, in date/device-partitioned Parquet; it reads only what its manifest lists.

Devices are registered to employees who consented (``helpers.enrol``): device-0001 is
alice's, device-0002 bob's. Events are stamped from tomorrow 00:00 UTC on, after that consent.

Every test runs on each storage backend: the event files on local disk and in an object store
(S3 over HTTP: moto's server, ``s3_rig.py``), with the control database on SQLite and on PostgreSQL when a
driver (psycopg) and a server (DESKCORDER_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:5432) are
there. The tests look at the files only through ``store.files``, the interface both backends implement.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import uuid
from pathlib import Path
from typing import Callable, Iterator

import msgpack
import polars
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deskcorder.events import EVENT_SCHEMA, Event, EventKind, columns_to_table, events_to_columns
from deskcorder.store import BatchConflict, EventStore, StoreError, WriteResult
from deskcorder.store._events._layout import read_parquet
from deskcorder.wire import MSGPACK, Batch, content_hash, decode_batch, encode_batch

from .helpers import READ, decrypted_file, enrol, next_utc_midnight_ns
from .s3_rig import s3_bucket_url, s3_endpoint  # noqa: F401  (fixtures: the object-store backend)

NS = 1_000_000_000
MIDNIGHT = next_utc_midnight_ns()  # tomorrow 00:00 UTC
DAY = dt.datetime.fromtimestamp(MIDNIGHT // NS, dt.timezone.utc).date()
_PG_ADMIN = os.environ.get("DESKCORDER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def make_events(session: str, start_seq: int, n: int, t_wall0: int, step_ns: int = 1_000_000) -> list[Event]:
    kinds = [EventKind.KEY_DOWN, EventKind.KEY_UP, EventKind.MOVE, EventKind.FOCUS]
    out = []
    for i in range(n):
        seq = start_seq + i
        kind = kinds[seq % 4]
        ev = Event(session, seq, seq * step_ns, t_wall0 + i * step_ns, kind)
        if kind in (EventKind.KEY_DOWN, EventKind.KEY_UP):
            ev.key, ev.char = "a", "a"
        elif kind is EventKind.MOVE:
            ev.x, ev.y = seq % 1920, seq % 1080
        else:
            ev.app_class, ev.window_title = "XTerm", f"term {seq % 3}"
        out.append(ev)
    return out


def make_batch(batch_id: str, events: list[Event], device_id: str = "device-0001") -> Batch:
    return decode_batch(encode_batch(batch_id, device_id, events_to_columns(events)), MSGPACK)


def parquet_of(events: list[Event]) -> bytes:
    """Plain (unsealed) Parquet of some events: what a foreign or half-finished writer could leave."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pydict(events_to_columns(events), schema=EVENT_SCHEMA), sink)
    return sink.getvalue().to_pybytes()


def expected_table(events: list[Event], device_id: str = "device-0001") -> pa.Table:
    table = pa.Table.from_pydict(events_to_columns(events), schema=EVENT_SCHEMA)
    table = table.append_column(pa.field("device_id", pa.string(), nullable=False),
                                pa.array([device_id] * len(events), pa.string()))
    return table.sort_by([("session_id", "ascending"), ("seq", "ascending")])


def _postgres_factory() -> Iterator[Callable[[], str | None]]:
    import psycopg  # a test dependency: PostgreSQL is a supported backend, so its tests must run

    try:
        admin = psycopg.connect(_PG_ADMIN, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError as exc:
        # CI always has the server; skipping there would hide a broken backend.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"no PostgreSQL at {_PG_ADMIN}: {exc}")
    names: list[str] = []

    def new_database() -> str:
        name = f"deskcorder_test_{uuid.uuid4().hex[:12]}"
        admin.execute(f'CREATE DATABASE "{name}"')
        names.append(name)
        return _PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name

    try:
        yield new_database
    finally:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: the default SQLite control.db in the data dir; else a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    gen = _postgres_factory()
    factory = next(gen)
    try:
        yield factory()
    finally:
        gen.close()


@pytest.fixture(params=["local-disk", "object-store"])
def events_url(request: pytest.FixtureRequest) -> str | None:
    """Where the event files go: None, the data dir's events/ on local disk; else a fresh S3 bucket."""
    return None if request.param == "local-disk" else request.getfixturevalue("s3_bucket_url")


@pytest.fixture
def open_store(tmp_path: Path, database_url: str | None,
               events_url: str | None) -> Iterator[Callable[[], EventStore]]:
    opened: list[EventStore] = []

    def open_() -> EventStore:
        store = EventStore(tmp_path / "data", database_url=database_url, events_url=events_url)
        opened.append(store)
        enrol(store, "alice", "device-0001")
        enrol(store, "bob", "device-0002")
        return store

    yield open_
    for store in opened:
        store.close()


def stored_files(store: EventStore) -> list[str]:
    """The keys of the store's event files (``events/date=.../device=.../....parquet``), on either backend."""
    return [f.key for f in store.files.list("events") if f.key.endswith(".parquet")]


def file_bytes(store: EventStore) -> dict[str, bytes]:
    return {key: store.files.get(key) for key in stored_files(store)}


def test_batches_read_back_whole_after_reopening_from_disk(open_store: Callable[[], EventStore]) -> None:
    first = make_events("sess-a", 0, 300, MIDNIGHT + 3600 * NS)
    second = make_events("sess-a", 300, 200, MIDNIGHT + 3700 * NS)
    other = make_events("sess-b", 0, 50, MIDNIGHT + 7200 * NS)
    store = open_store()
    assert store.write_batch(make_batch("batch-0001", first)).stored == 300
    assert store.write_batch(make_batch("batch-0002", second)).stored == 200
    assert store.write_batch(make_batch("batch-0003", other, "device-0002")).stored == 50
    store.close()

    again = open_store()
    got = again.read_events(**READ)
    assert got.schema.names == [*EVENT_SCHEMA.names, "device_id"]
    assert got.equals(pa.concat_tables([expected_table(first + second), expected_table(other, "device-0002")]))
    assert again.read_events(**READ, session_id="sess-a").equals(expected_table(first + second))
    assert again.read_events(**READ, device_id="device-0002").equals(expected_table(other, "device-0002"))
    assert again.read_events(**READ, session_id="sess-a", device_id="device-0002").num_rows == 0
    assert again.read_events(**READ, session_id="no-such-session").num_rows == 0
    sessions = {s.session_id: s for s in again.sessions()}
    assert (sessions["sess-a"].n_events, sessions["sess-a"].device_id) == (500, "device-0001")
    assert sessions["sess-a"].first_t_wall_ns == first[0].t_wall_ns
    assert sessions["sess-a"].last_t_wall_ns == second[-1].t_wall_ns
    devices = {d.device_id: d for d in again.devices()}
    assert (devices["device-0001"].n_batches, devices["device-0001"].n_events) == (2, 500)
    assert devices["device-0001"].first_seen <= devices["device-0001"].last_seen
    assert devices["device-0001"].first_seen.tzinfo is not None


def test_all_events_read_back_sorted_by_session_then_seq(open_store: Callable[[], EventStore]) -> None:
    late = make_events("sess-a", 100, 100, MIDNIGHT)
    early = make_events("sess-a", 0, 100, MIDNIGHT)
    b = make_events("sess-0", 0, 10, MIDNIGHT)
    store = open_store()
    for i, events in enumerate([late, b, early]):
        store.write_batch(make_batch(f"batch-000{i}", events))
    got = store.read_events(**READ)
    assert list(zip(got["session_id"].to_pylist(), got["seq"].to_pylist())) == \
        [("sess-0", i) for i in range(10)] + [("sess-a", i) for i in range(200)]
    assert {s.session_id: s.n_events for s in store.sessions()} == {"sess-0": 10, "sess-a": 200}


def test_repeated_batch_is_stored_once(open_store: Callable[[], EventStore]) -> None:
    events = make_events("sess-a", 0, 100, MIDNIGHT)
    store = open_store()
    assert store.write_batch(make_batch("batch-0001", events)) == WriteResult("batch-0001", 100, False)
    files = file_bytes(store)
    assert store.write_batch(make_batch("batch-0001", events)) == WriteResult("batch-0001", 0, True)
    assert file_bytes(store) == files
    assert [(d.n_batches, d.n_events) for d in store.devices()] == [(1, 100), (0, 0)]
    assert store.read_events(**READ).equals(expected_table(events))


def test_batch_id_reused_with_other_content_is_refused_and_original_kept(open_store: Callable[[], EventStore]) -> None:
    original = make_events("sess-a", 0, 100, MIDNIGHT)
    store = open_store()
    store.write_batch(make_batch("batch-0001", original))
    files = file_bytes(store)
    with pytest.raises(BatchConflict, match="batch-0001.*different content") as info:
        store.write_batch(make_batch("batch-0001", make_events("sess-a", 0, 99, MIDNIGHT)))
    assert info.value.field == "batch_id"
    assert file_bytes(store) == files
    assert store.read_events(**READ).equals(expected_table(original))


def test_batch_stored_under_the_old_messagepack_hash_is_a_duplicate_when_retried(
        open_store: Callable[[], EventStore]) -> None:
    # Collectors before wire.content_hash stored sha256 of the events re-packed with MessagePack; an agent's
    # retry across the upgrade must still be answered as a duplicate, and other content still refused.
    events = make_events("sess-a", 0, 100, MIDNIGHT)
    batch = make_batch("batch-0001", events)
    legacy = hashlib.sha256(msgpack.packb(events_to_columns(events), use_bin_type=True)).hexdigest()
    assert legacy != batch.content_hash
    store = open_store()
    store.write_batch(dataclasses.replace(batch, content_hash=legacy))
    assert store.write_batch(batch) == WriteResult("batch-0001", 0, True)
    with pytest.raises(BatchConflict):
        store.write_batch(make_batch("batch-0001", make_events("sess-a", 0, 99, MIDNIGHT)))


def test_content_hash_tells_a_null_from_a_zero_or_empty_text_and_ignores_an_omitted_column() -> None:
    # The hash is taken from the Arrow buffers (wire.content_hash): the validity bits must count, not only values.
    columns = events_to_columns(make_events("sess-a", 0, 3, MIDNIGHT))
    hashes = {content_hash(columns_to_table({**columns, "dx": dx, "app_process": app}))
              for dx, app in [([None] * 3, [None] * 3), ([0, None, None], [None] * 3), ([None, 0, None], [None] * 3),
                              ([None] * 3, ["", None, None])]}
    assert len(hashes) == 4
    without_reason = {name: values for name, values in columns.items() if name != "reason"}
    assert content_hash(columns_to_table(without_reason)) == content_hash(columns_to_table(columns))


def test_session_of_another_device_is_refused(open_store: Callable[[], EventStore]) -> None:
    store = open_store()
    store.write_batch(make_batch("batch-0001", make_events("sess-a", 0, 10, MIDNIGHT), "device-0001"))
    with pytest.raises(BatchConflict, match="sess-a.*device-0001") as info:
        store.write_batch(make_batch("batch-0002", make_events("sess-a", 10, 10, MIDNIGHT), "device-0002"))
    assert info.value.field == "events.session_id"
    assert store.read_events(**READ).num_rows == 10
    assert [(d.device_id, d.n_events) for d in store.devices()] == [("device-0001", 10), ("device-0002", 0)]


def test_batch_straddling_midnight_lands_in_two_date_partitions(open_store: Callable[[], EventStore]) -> None:
    # 100 events, 10 ms apart, the first 50 before 00:00 UTC tomorrow.
    events = make_events("sess-night", 0, 100, MIDNIGHT - 50 * 10_000_000, step_ns=10_000_000)
    store = open_store()
    store.write_batch(make_batch("batch-night", events))
    files = stored_files(store)
    assert [f.split("/")[:3] for f in files] == [
        ["events", f"date={DAY - dt.timedelta(days=1)}", "device=device-0001"],
        ["events", f"date={DAY}", "device=device-0001"]]
    assert all(Path(f).name.startswith("batch-night-") for f in files)
    before, after = (pq.read_table(pa.BufferReader(decrypted_file(store, f))) for f in files)
    assert before["seq"].to_pylist() == list(range(50))
    assert after["seq"].to_pylist() == list(range(50, 100))
    store.close()
    assert open_store().read_events(**READ).equals(expected_table(events))


def test_files_are_zstd_compressed_encoded_for_size_and_sorted(open_store: Callable[[], EventStore]) -> None:
    events = make_events("sess-b", 0, 500, MIDNIGHT) + make_events("sess-a", 0, 500, MIDNIGHT)
    store = open_store()
    store.write_batch(make_batch("batch-0001", events[::-1]))  # sent in reverse order
    [path] = stored_files(store)
    plain = decrypted_file(store, path)
    parquet = pq.ParquetFile(pa.BufferReader(plain))
    group = parquet.metadata.row_group(0)
    columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    assert {c.compression for c in columns.values()} == {"ZSTD"}
    assert "RLE_DICTIONARY" in columns["kind"].encodings
    assert "DELTA_BINARY_PACKED" in columns["t_mono_ns"].encodings  # every column: tests/test_store_encoding.py
    assert [(c.column_index, c.descending) for c in group.sorting_columns] == [(0, False), (1, False)]
    # Other Parquet readers open the file; its columns are the stored encoding's (t_wall_rest_ns, key_code).
    assert polars.read_parquet(plain).to_arrow().to_pylist() == parquet.read().to_pylist()
    table = read_parquet(plain)
    assert table.schema.equals(EVENT_SCHEMA)
    assert list(zip(table["session_id"].to_pylist(), table["seq"].to_pylist())) == \
        sorted(zip(table["session_id"].to_pylist(), table["seq"].to_pylist()))


def test_orphan_file_missing_from_the_manifest_is_never_read(open_store: Callable[[], EventStore]) -> None:
    kept = make_events("sess-a", 0, 100, MIDNIGHT)
    store = open_store()
    store.write_batch(make_batch("batch-0001", kept))
    [path] = stored_files(store)
    folder = f"events/date={DAY}/device=device-0001"
    # What a crash between the durable write and the manifest commit leaves behind:
    store.files.put(path.replace("batch-0001", "batch-crashed"), store.files.get(path))
    store.files.put(f"{folder}/orphan.parquet", parquet_of(make_events("sess-a", 100, 5, MIDNIGHT)))
    store.files.put(f"{folder}/.half-written.tmp", b"PAR1\x00")
    store.close()
    assert open_store().read_events(**READ).equals(expected_table(kept))


def test_retry_after_a_crash_before_commit_rewrites_the_same_file(
        open_store: Callable[[], EventStore], tmp_path: Path) -> None:
    events = make_events("sess-a", 0, 100, MIDNIGHT)
    with EventStore(tmp_path / "probe") as probe:
        enrol(probe, "alice", "device-0001")
        probe.write_batch(make_batch("batch-0001", events))
        [path] = stored_files(probe)  # the key this batch always gets
    # The state a crash between the durable write and the commit leaves: a file under that key
    # (here a stale, different one, to see it replaced) and no manifest row.
    store = open_store()
    store.files.put(path, parquet_of(events[:3]))
    assert store.read_events(**READ).num_rows == 0
    assert store.write_batch(make_batch("batch-0001", events)).stored == 100
    assert stored_files(store) == [path]
    assert store.read_events(**READ).equals(expected_table(events))


def test_closed_store_refuses_work(open_store: Callable[[], EventStore]) -> None:
    store = open_store()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.read_events(**READ)
