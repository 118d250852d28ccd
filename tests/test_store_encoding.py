"""The event file format (``store/_events/_layout.py``): per-column encodings that give back exactly the events
written, old (format 1) files read as they are, and about 2.5x fewer stored bytes than format 1."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deskcorder.events import EVENT_SCHEMA, Event, EventKind, columns_to_table, events_to_columns
from deskcorder.store import EventStore, StoreError
from deskcorder.store._events._layout import parquet_bytes, read_parquet, sort_events, v1_parquet_bytes
from deskcorder.store._events._sealed import seal
from deskcorder.wire import MSGPACK, decode_batch, encode_batch

from .helpers import READ, decrypted_file, enrol, next_utc_midnight_ns

NS = 1_000_000_000
MIDNIGHT = next_utc_midnight_ns()
KEYS = [("a", "a", 97), ("shift", None, 65505), ("space", " ", 32), ("é", "é", 233), ("dead_acute", None, 65105),
        ("🙂", "🙂", None), (None, "中", None), (None, None, 269025042), ("enter", "\r", 65293)]
TITLES = ["Q3 report.odt - LibreOffice", "Résumé — Ünïcödé ✓ 日本語", "~/src/app", "x" * 1024]


def desk_events(rng: random.Random, session: str, n: int, t_wall0: int) -> list[Event]:
    """n events of every kind: typing, moves (negative coordinates on a left monitor), clicks, scrolls, focus
    with geometry, pauses and gaps; the wall clock jitters against the monotonic one and now and then jumps."""
    events = []
    t_mono, offset, x, y = rng.randrange(10**12), t_wall0, 0, 0
    for seq in range(n):
        t_mono += rng.choice((16_666_666, 16_666_667, rng.randrange(1, 300_000_000)))
        if rng.random() < 0.01:  # NTP stepped the wall clock, or the machine slept: either way
            offset += rng.choice((-1, 1)) * rng.randrange(1, 3600 * NS)
        ev = Event(session, seq, t_mono, max(0, t_mono + offset - 10**12 + rng.choice((10, 20, 20, 30, 38_137))),
                   EventKind.MOVE)
        r = rng.random()
        if r < 0.45:
            ev.key, ev.char, ev.vk = rng.choice(KEYS)
            # A key event needs a key; a char or vk alone rides on a focus event (no column is required there).
            ev.kind = rng.choice((EventKind.KEY_DOWN, EventKind.KEY_UP)) if ev.key else EventKind.FOCUS
        elif r < 0.85:
            x, y = x + rng.randint(-40, 40), y + rng.randint(-40, 40)
            ev.x, ev.y = x, y
        elif r < 0.9:
            ev.kind, ev.button, ev.x, ev.y = rng.choice((EventKind.BUTTON_DOWN, EventKind.BUTTON_UP)), "left", x, y
        elif r < 0.95:
            ev.kind, ev.x, ev.y, ev.dx, ev.dy = EventKind.SCROLL, x, y, 0, rng.choice((-3, 1))
        elif r < 0.98:
            ev.kind, ev.app_process, ev.app_class = EventKind.FOCUS, "soffice", rng.choice(("Writer", None))
            ev.window_title = rng.choice(TITLES)
            ev.screen_width, ev.screen_height = 3840, 1080
            ev.window_x, ev.window_y, ev.window_width, ev.window_height = -1920, -30, 1920, 1110
        elif r < 0.99:
            ev.kind, ev.reason = rng.choice((EventKind.PAUSE, EventKind.RESUME)), rng.choice(("hotkey", None))
        else:
            ev.kind, ev.reason, ev.lost = EventKind.GAP, "queue_full", rng.randint(1, 500)
        events.append(ev)
    return events


def table_of(events: list[Event]) -> pa.Table:
    return sort_events(columns_to_table(events_to_columns(events)))


def columns_stored(data: bytes) -> dict[str, pq.ColumnChunkMetaData]:
    group = pq.ParquetFile(pa.BufferReader(data)).metadata.row_group(0)
    return {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}


@pytest.mark.parametrize("seed", range(6))
def test_generated_batches_come_back_exactly(seed: int) -> None:
    rng = random.Random(seed)
    sessions = [desk_events(rng, f"session-{seed}-{i}", rng.choice((1, 7, 300, 2000)), MIDNIGHT) for i in range(3)]
    table = table_of([e for s in sessions for e in s])
    back = read_parquet(parquet_bytes(table))
    assert back.schema.equals(EVENT_SCHEMA, check_metadata=True)
    assert back.to_pylist() == table.to_pylist()  # values and row order, nulls included
    assert back.equals(table)


@pytest.mark.parametrize("case", ["no key columns", "only chars", "only vk", "wall clock before mono",
                                  "int64 extremes", "one event", "no events"])
def test_edge_cases_come_back_exactly(case: str) -> None:
    top = 2**63 - 1
    events = [Event("s", i, 10**9 + i, MIDNIGHT + i, EventKind.MOVE, x=-i, y=-(10**6)) for i in range(50)]
    if case == "only chars":
        for e in events:
            e.kind, e.x, e.y, e.char = EventKind.FOCUS, None, None, "ß"
    elif case == "only vk":
        for e in events:
            e.vk = -5 if e.seq % 2 else 2**31 - 1
    elif case == "wall clock before mono":  # a machine up for years with its wall clock at 1970
        for e in events:
            e.t_mono_ns, e.t_wall_ns = top - 1000 + e.seq, e.seq * 7
    elif case == "int64 extremes":  # t_wall - t_mono spans more than int64 holds: t_wall is kept as it is
        events[0].t_mono_ns, events[0].t_wall_ns = 0, top
        events[1].t_mono_ns, events[1].t_wall_ns = top, 0
    elif case == "one event":
        events = events[:1]
    elif case == "no events":
        events = []
    table = table_of(events) if events else EVENT_SCHEMA.empty_table()
    data = parquet_bytes(table)
    assert read_parquet(data).equals(table)
    if case == "int64 extremes":
        assert "t_wall_ns" in columns_stored(data) and "t_wall_rest_ns" not in columns_stored(data)


def test_a_format_1_file_is_read_as_written() -> None:
    table = table_of(desk_events(random.Random(99), "old-session", 3000, MIDNIGHT))
    old = v1_parquet_bytes(table)
    assert pq.ParquetFile(pa.BufferReader(old)).schema_arrow.equals(EVENT_SCHEMA)  # really the old layout
    assert read_parquet(old).equals(table)


def test_format_2_stores_each_column_as_documented() -> None:
    table = table_of(desk_events(random.Random(5), "s", 5000, MIDNIGHT))
    data = parquet_bytes(table)
    parquet = pq.ParquetFile(pa.BufferReader(data))
    meta = json.loads(parquet.metadata.metadata[b"deskcorder.events"])
    assert meta["v"] == 2 and meta["wall_offset_ns"] == table["t_wall_ns"][0].as_py() - table["t_mono_ns"][0].as_py()
    assert sorted(map(tuple, meta["keys"]), key=repr) == sorted(KEYS, key=repr)
    columns = columns_stored(data)
    assert {"key", "char", "vk", "t_wall_ns"}.isdisjoint(columns) and {"key_code", "t_wall_rest_ns"} <= set(columns)
    for name in ("seq", "t_mono_ns", "x", "y", "dx", "dy"):
        assert "DELTA_BINARY_PACKED" in columns[name].encodings, name
    for name in ("kind", "key_code", "t_wall_rest_ns", "window_title", "window_x"):
        assert "RLE_DICTIONARY" in columns[name].encodings, name
    assert {c.compression for c in columns.values()} == {"ZSTD"}
    assert not any(c.is_stats_set for c in columns.values())
    assert b"ARROW:schema" not in parquet.metadata.metadata
    assert [(c.column_index, c.descending) for c in parquet.metadata.row_group(0).sorting_columns] == \
        [(0, False), (1, False)]
    # A column null in every row is not stored: these events have no lost counts but one file.
    assert "lost" not in columns_stored(parquet_bytes(table.filter(pa.compute.not_equal(table["kind"], "gap"))))


def test_format_2_stores_well_under_half_of_format_1() -> None:
    """The desk-work mix of benchmarks/storage_bytes.py in miniature: 5,000 events of one session."""
    rng = random.Random(13)
    events, t, x = [], 0, 500
    while len(events) < 5000:
        if rng.random() < 0.5:  # a pointer stroke at 60 Hz
            for i in range(rng.randint(12, 90)):
                t += 16_666_667
                events.append(Event("s", len(events), t, MIDNIGHT + t, EventKind.MOVE, x=x + 3 * i, y=400 - i))
        else:  # typing, irregular like people
            for _ in range(rng.randint(5, 60)):
                key, char, vk = rng.choice(KEYS[:4])
                t += rng.randrange(140_000_000, 250_000_000)
                events.append(Event("s", len(events), t, MIDNIGHT + t, EventKind.KEY_DOWN, key=key, char=char, vk=vk))
    table = table_of(events[:5000])
    now, before = len(parquet_bytes(table)) / 5000, len(v1_parquet_bytes(table)) / 5000
    assert now <= 4.0 and now * 2 <= before, (now, before)


def test_an_unknown_future_format_names_the_upgrade() -> None:
    table = table_of(desk_events(random.Random(1), "s", 10, MIDNIGHT))
    parquet = pq.ParquetFile(pa.BufferReader(parquet_bytes(table)))
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, parquet.schema_arrow, store_schema=False) as out:
        out.write_table(parquet.read())
        out.add_key_value_metadata({"deskcorder.events": '{"v": 3}'})
    with pytest.raises(StoreError, match="format 3.*upgrade deskcorder"):
        read_parquet(sink.getvalue().to_pybytes())


def test_a_store_reads_its_format_1_files_beside_format_2_ones(tmp_path: Path) -> None:
    """A store written by an older deskcorder: one of its files is put back in format 1 (sealed as it
    sealed them), and the store reads both formats together as the events stored."""
    with EventStore(tmp_path / "data") as store:
        enrol(store, "alice", "device-0001")
        rng = random.Random(7)
        batches = [desk_events(rng, f"session-{i}", 400, MIDNIGHT + i * 3600 * NS) for i in range(2)]
        for i, events in enumerate(batches):
            store.write_batch(decode_batch(encode_batch(f"batch-000{i}", "device-0001", events_to_columns(events)),
                                           MSGPACK))
        expected = store.read_events(**READ)
        old_path = sorted(f.key for f in store.files.list("events"))[0]
        plain = decrypted_file(store, old_path)
        from deskcorder.store._events._reader import select_files
        from deskcorder.store._people._employees import unwrap_key

        with store._engine.connect() as conn:
            key = select_files(conn, device_id="device-0001").keys["device-0001"]
        store.files.put(old_path, seal(v1_parquet_bytes(read_parquet(plain)), unwrap_key(store._wrapper, key),
                                       key.key_id, old_path))
        assert b"deskcorder.events" not in decrypted_file(store, old_path)  # really format 1 now
        assert store.read_events(**READ).equals(expected)
        assert expected.num_rows == 800
