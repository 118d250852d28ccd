"""Event files: one Parquet file per (batch, UTC date), their names and their bytes.

Layout, relative to the events root (``_backends.py``: the data dir, or an object store)::

    events/date=YYYY-MM-DD/device=<device_id>/<batch_id>-<hash16>.parquet

Each file's bytes are Parquet encrypted whole (``_sealed.py``); this module
names the files and turns tables into Parquet bytes and back, without knowing
about keys or where the bytes are kept.

The date comes from each event's ``t_wall_ns`` in UTC, so a batch that
straddles midnight becomes one file in each date folder (same file name, no
part counter needed). ``hash16`` is the start of the batch's content hash: the
name is a pure function of the batch, so a retry of the same batch rewrites
the same path, while a different batch that reuses the id can never overwrite
the file of the one that was stored (see ``_store.py``).

Encoding (format 2, the Parquet key-value metadata ``deskcorder.events``)
--------------------------------------------------------------------------
Files are read whole and only through ``read_parquet``, so the columns stored
need not be the event's columns, as long as the events come back exactly.
Per column (``benchmarks/storage_bytes.py`` measures it: 9.5 -> 3.9 bytes per
event for the load generator's desk-work mix in 5,000-event files, 7.7 -> 3.3
in one file per device and day):

- ``t_wall_ns`` becomes ``t_wall_rest_ns = t_wall_ns - t_mono_ns - offset``
  with one ``wall_offset_ns`` per file. The agent reads both clocks at once and
  Linux slews both alike, so the rest is the few nanoseconds between the two
  reads (a handful of distinct values: dictionary encoded, ~0.4 bytes) and a
  step where the wall clock jumped; it is exact integer arithmetic, so always
  lossless. Where the subtraction would overflow int64, ``t_wall_ns`` is kept
  as it is (``wall_offset_ns`` null).
- ``key``, ``char`` and ``vk`` say the same thing three times ("a", "a",
  97): one ``key_code`` column indexes the file's distinct (key, char, vk)
  triples, kept exactly (JSON) in the metadata; null where all three are null.
- ``seq``, ``t_mono_ns`` and the coordinates rise or move in small steps in a
  sorted file: DELTA_BINARY_PACKED (a pointer stroke costs a few bits a move).
- every other column is dictionary encoded (kinds, buttons, apps, titles,
  geometry), and a column null in every row of the file is not stored at all.
- no column statistics and no Arrow schema in the footer: a file is always
  read whole, and the schema is ``EVENT_SCHEMA``; zstd at ``_ZSTD_LEVEL``.

Files written before format 2 (plain ``EVENT_SCHEMA`` columns, no metadata
key) are read as they are: nothing needs rewriting.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ...events import EVENT_SCHEMA
from ...wire import Batch
from .._errors import StoreError

__all__ = ["EVENTS_DIR", "FORMAT_VERSION", "split_by_date", "relative_path", "sort_events", "parquet_bytes",
           "read_parquet"]

EVENTS_DIR = "events"
FORMAT_VERSION = 2
_FORMAT_KEY = "deskcorder.events"
_NS_PER_DAY = 86_400_000_000_000
_EPOCH = dt.date(1970, 1, 1)
_SORT_KEYS = [("session_id", "ascending"), ("seq", "ascending")]
_KEY_COLUMNS = ("key", "char", "vk")
_DELTA_COLUMNS = ("seq", "t_mono_ns", "t_wall_ns", "x", "y", "dx", "dy")
# zstd level: 9 stores ~2% less than 3 (4.32 against 4.41 bytes per event in 5,000-event files), at a
# write cost lost in pyarrow's own per-file work on ingest-sized files (benchmarks/storage_bytes.py
# prints write and read times); day-sized files (compaction) take a few ms more per 5,000 events.
_ZSTD_LEVEL = 9
# Format 1: every column of EVENT_SCHEMA as it is, statistics and Arrow schema in the footer.
_V1_DELTA_COLUMNS = ("seq", "t_mono_ns", "t_wall_ns")
_V1_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": [name for name in EVENT_SCHEMA.names if name not in _V1_DELTA_COLUMNS],
    "column_encoding": {name: "DELTA_BINARY_PACKED" for name in _V1_DELTA_COLUMNS},
    "write_statistics": True,
}
_SORTING_COLUMNS = [pq.SortingColumn(EVENT_SCHEMA.get_field_index("session_id")),
                    pq.SortingColumn(EVENT_SCHEMA.get_field_index("seq"))]


def sort_events(table: pa.Table) -> pa.Table:
    # An agent sends one session's events in seq order: most batches are sorted already, and sort_by's take
    # would copy every column (~0.75 ms per 5,000 events) to give the same table.
    n = table.num_rows
    if n > 1 and len(pc.unique(table.column("session_id"))) == 1:
        seq = table.column("seq")
        if pc.all(pc.less(seq.slice(0, n - 1), seq.slice(1))).as_py():
            return table
    return table.sort_by(_SORT_KEYS)


def split_by_date(events: pa.Table) -> list[tuple[dt.date, pa.Table]]:
    """The batch's events grouped by UTC calendar date of t_wall_ns, each group sorted by (session_id, seq)."""
    # t_wall_ns is validated >= 0, so integer division is floor division here.
    days = pc.divide(events.column("t_wall_ns"), pa.scalar(_NS_PER_DAY, pa.int64()))
    unique = sorted(pc.unique(days).to_pylist())
    if len(unique) == 1:
        return [(_EPOCH + dt.timedelta(days=unique[0]), sort_events(events))]
    return [(_EPOCH + dt.timedelta(days=day), sort_events(events.filter(pc.equal(days, day))))
            for day in unique]


def relative_path(batch: Batch, date: dt.date) -> str:
    """Where one date's part of a batch lives, relative to the data dir ('/'-separated, as stored in the manifest)."""
    return (f"{EVENTS_DIR}/date={date.isoformat()}/device={batch.device_id}/"
            f"{batch.batch_id}-{batch.content_hash[:16]}.parquet")


def parquet_bytes(table: pa.Table) -> bytes:
    """A sorted EVENT_SCHEMA table as a format-2 file (see the module docstring)."""
    table = table.select(EVENT_SCHEMA.names)
    meta: dict[str, Any] = {"v": FORMAT_VERSION}
    columns: dict[str, pa.ChunkedArray] = {}
    rest, meta["wall_offset_ns"] = _wall_rest(table.column("t_mono_ns"), table.column("t_wall_ns"))
    code, meta["keys"] = _key_codes(table)
    for name in EVENT_SCHEMA.names:
        if name in _KEY_COLUMNS:
            if name == "key" and code is not None:
                columns["key_code"] = code
            continue
        column = table.column(name)
        if name == "t_wall_ns" and rest is not None:
            columns["t_wall_rest_ns"] = rest
        elif column.null_count < len(column) or not EVENT_SCHEMA.field(name).nullable:
            columns[name] = column
    stored = pa.table(columns)
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, stored.schema, compression="zstd", compression_level=_ZSTD_LEVEL,
                          use_dictionary=[n for n in columns if n not in _DELTA_COLUMNS],
                          column_encoding={n: "DELTA_BINARY_PACKED" for n in columns if n in _DELTA_COLUMNS},
                          write_statistics=False, store_schema=False, sorting_columns=_SORTING_COLUMNS) as out:
        out.write_table(stored)
        out.add_key_value_metadata({_FORMAT_KEY: json.dumps(meta, ensure_ascii=False, separators=(",", ":"))})
    return sink.getvalue()


def v1_parquet_bytes(table: pa.Table) -> bytes:
    """Format 1, what deskcorder wrote before format 2: kept so that tests and benchmarks can write one."""
    sink = io.BytesIO()
    pq.write_table(table, sink, sorting_columns=_SORTING_COLUMNS, **_V1_OPTIONS)
    return sink.getvalue()


def read_parquet(data: bytes) -> pa.Table:
    """The events of a file of any format, as an EVENT_SCHEMA table in the file's order."""
    parquet = pq.ParquetFile(pa.BufferReader(data))
    found = (parquet.metadata.metadata or {}).get(_FORMAT_KEY.encode())
    if found is None:
        return parquet.read().cast(EVENT_SCHEMA) if parquet.schema_arrow != EVENT_SCHEMA else parquet.read()
    meta = json.loads(found)
    if meta.get("v") != FORMAT_VERSION:
        raise StoreError(f"this event file is in format {meta.get('v')!r}, and this deskcorder reads formats 1 "
                         f"and {FORMAT_VERSION}: upgrade deskcorder")
    stored = parquet.read()
    n = stored.num_rows
    columns = []
    for field in EVENT_SCHEMA:
        name = field.name
        if name == "t_wall_ns" and meta["wall_offset_ns"] is not None:
            since = pc.add(stored.column("t_wall_rest_ns"), pa.scalar(meta["wall_offset_ns"], pa.int64()))
            columns.append(pc.add(since, stored.column("t_mono_ns")))
        elif name in _KEY_COLUMNS:
            columns.append(_key_column(meta["keys"], _KEY_COLUMNS.index(name), field.type,
                                       stored.column("key_code") if "key_code" in stored.column_names else None, n))
        elif name in stored.column_names:
            columns.append(stored.column(name))
        else:
            columns.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA)


def _wall_rest(mono: pa.ChunkedArray, wall: pa.ChunkedArray) -> tuple[pa.ChunkedArray | None, int | None]:
    """``t_wall_ns - t_mono_ns - offset`` and the offset (the first event's), or (None, None) where int64
    cannot hold it (then t_wall_ns is stored as it is)."""
    if len(mono) == 0:
        return None, None
    try:
        since = pc.subtract_checked(wall, mono)
        offset = since[0].as_py()
        return pc.subtract_checked(since, pa.scalar(offset, pa.int64())), offset
    except pa.ArrowInvalid:  # overflow
        return None, None


def _key_codes(table: pa.Table) -> tuple[pa.ChunkedArray | None, list[list[Any]]]:
    """One code per row for its (key, char, vk) triple, null where all three are null, and the triples."""
    parts = [table.column(name).combine_chunks().dictionary_encode() for name in _KEY_COLUMNS]
    if all(p.null_count == len(p) for p in parts):
        return None, []
    # A mixed-radix number of the three dictionary indices (0 for null), made dense by pc.unique.
    composite = pa.scalar(0, pa.int64())
    for part in parts:
        index = pc.fill_null(pc.add(pc.cast(part.indices, pa.int64()), 1), 0)
        composite = pc.add(pc.multiply(composite, len(part.dictionary) + 1), index)
    composite = pc.if_else(pc.equal(composite, 0), pa.scalar(None, pa.int64()), composite)
    distinct = pc.unique(composite).drop_null()
    codes = pc.index_in(composite, value_set=distinct)
    triples = []
    for value in distinct.to_pylist():
        triple: list[Any] = []
        for part in reversed(parts):
            value, index = divmod(value, len(part.dictionary) + 1)
            triple.append(part.dictionary[index - 1].as_py() if index else None)
        triples.append(triple[::-1])
    return pa.chunked_array([pc.cast(codes, pa.int32())]), triples


def _key_column(triples: list[list[Any]], which: int, typ: pa.DataType, codes: pa.ChunkedArray | None,
                n: int) -> pa.ChunkedArray | pa.Array:
    if codes is None:
        return pa.nulls(n, typ)
    values = pa.array([t[which] for t in triples], typ)
    return values.take(codes)
