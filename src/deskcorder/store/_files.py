"""Event files on disk: one Parquet file per (batch, UTC date), written so a crash never leaves a torn one.

Layout::

    <data_dir>/events/date=YYYY-MM-DD/device=<device_id>/<batch_id>-<hash16>.parquet

Each file's bytes are Parquet encrypted whole (``_sealed.py``); this module
turns tables into Parquet bytes and back, and writes and deletes files
durably, without knowing about keys.

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
import os
import re
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..events import EVENT_SCHEMA
from ..wire import Batch

__all__ = ["EVENTS_DIR", "split_by_date", "relative_path", "write_durably", "sort_events", "parquet_bytes",
           "read_parquet", "delete_durably", "partition_dates", "date_of_path", "device_folders"]

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


def write_durably(root: Path, rel_path: str, data: bytes) -> None:
    """Write a file so that, once this returns, it survives a crash or power loss whole.

    Temp file in the target folder -> fsync -> atomic rename over the final
    name -> fsync the folder (the rename itself is a directory entry). A crash
    at any point leaves either no file, a stray temp file, or the complete file.
    """
    final = root / rel_path
    _make_dirs_durably(final.parent)
    tmp = final.with_name(f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)


def _make_dirs_durably(path: Path) -> None:
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)  # a concurrent writer may create it first
        _fsync_dir(folder.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def date_of_path(rel_path: str) -> dt.date:
    return dt.date.fromisoformat(rel_path.split("/")[1].removeprefix("date="))


def partition_dates(root: Path) -> list[dt.date]:
    """Every date folder under events/, whatever the manifest says (crash leftovers included)."""
    base = root / EVENTS_DIR
    if not base.is_dir():
        return []
    return sorted(dt.date.fromisoformat(m.group(1)) for p in base.iterdir() if (m := _DATE_DIR.match(p.name)))


def device_folders(root: Path, device_id: str) -> list[Path]:
    """Every folder holding files of this device, one per date."""
    base = root / EVENTS_DIR
    if not base.is_dir():
        return []
    return sorted(p / f"device={device_id}" for p in base.iterdir()
                  if _DATE_DIR.match(p.name) and (p / f"device={device_id}").is_dir())


def delete_durably(root: Path, paths: list[Path]) -> int:
    """Delete files and folders (with everything inside), fsync what held them, drop emptied date folders.

    Missing paths are fine (a re-run after a crash). Returns the number of files deleted.
    """
    deleted = 0
    touched: set[Path] = set()
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*"), reverse=True):
                if child.is_dir():
                    child.rmdir()
                else:
                    child.unlink(missing_ok=True)
                    deleted += 1
            path.rmdir()
        elif path.exists():
            path.unlink()
            deleted += 1
        else:
            continue
        touched.add(path.parent)
    events = root / EVENTS_DIR
    for folder in sorted(touched, key=lambda p: len(p.parts), reverse=True):
        while folder != events and folder.is_relative_to(events) and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            touched.add(folder.parent)
            folder = folder.parent
    for folder in touched:
        if folder.is_dir():
            _fsync_dir(folder)
    return deleted
