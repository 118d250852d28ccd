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
"""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ...events import EVENT_SCHEMA
from ...wire import Batch

__all__ = ["EVENTS_DIR", "split_by_date", "relative_path", "sort_events", "parquet_bytes", "read_parquet"]

EVENTS_DIR = "events"
_NS_PER_DAY = 86_400_000_000_000
_EPOCH = dt.date(1970, 1, 1)
_SORT_KEYS = [("session_id", "ascending"), ("seq", "ascending")]
# seq and the clocks rise steadily inside a sorted file: delta encoding stores them in ~1/3
# of what dictionary+zstd needs (23 -> 12 bytes/event on benchmarks/ingest_http.py data) and
# writes faster. Every other column is dictionary encoded (few distinct keys, kinds, titles).
_DELTA_COLUMNS = ("seq", "t_mono_ns", "t_wall_ns")
_PARQUET_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": [name for name in EVENT_SCHEMA.names if name not in _DELTA_COLUMNS],
    "column_encoding": {name: "DELTA_BINARY_PACKED" for name in _DELTA_COLUMNS},
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
    sink = io.BytesIO()
    pq.write_table(table, sink, sorting_columns=_SORTING_COLUMNS, **_PARQUET_OPTIONS)
    return sink.getvalue()


def read_parquet(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data), schema=EVENT_SCHEMA)

