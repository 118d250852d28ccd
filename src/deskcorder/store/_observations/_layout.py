"""Observation files: one sealed Parquet file per (upload, UTC date, session), their names and their bytes.

Layout, relative to the same root as event files (``_events/_backends.py``: the
data dir, or an object store), beside ``events/``::

    observations/date=YYYY-MM-DD/device=<device_id>/<session16>-<hash24>.parquet

``session16`` is the start of a SHA-256 of the session id (a session id is any
text up to 64 characters, so it is never put in a path as it is), ``hash24``
the start of a SHA-256 of the file's observations: the name is a pure function
of what it holds, so a retry rewrites the same path, and two uploads never
overwrite each other's file. The manifest (``observation_files``) names the
session, the day and the key.

One row per observation, flat columns (what a dataset reads without unnesting
every field); the frame's image stays as it came (WebP or PNG, already
compressed) in the binary ``frame_data`` column, stored without a second
compression; the other columns are zstd-compressed. The whole file is then
sealed like an event file (``_events/_sealed.py``).
"""

from __future__ import annotations

import functools
import hashlib
import io
from typing import Any

import msgpack
import pyarrow as pa
import pyarrow.parquet as pq

from ...observations import Box, Element, Frame, Observation

__all__ = ["OBSERVATIONS_DIR", "observation_schema", "observation_hash", "relative_path", "to_parquet",
           "from_parquet", "day_of"]

OBSERVATIONS_DIR = "observations"
_NS_PER_DAY = 86_400_000_000_000
_INTS = ("action_seq", "t_mono_ns", "t_wall_ns", "screen_width", "screen_height", "window_x", "window_y",
         "window_width", "window_height")


@functools.cache
def observation_schema() -> pa.Schema:
    box = pa.struct([("x", pa.int64()), ("y", pa.int64()), ("width", pa.int64()), ("height", pa.int64())])
    return pa.schema([
        pa.field("session_id", pa.string(), nullable=False),
        *(pa.field(name, pa.int64(), nullable=False) for name in _INTS[:3]),
        pa.field("trigger", pa.string(), nullable=False),
        *(pa.field(name, pa.int64(), nullable=False) for name in _INTS[3:]),
        pa.field("monitors", pa.list_(box), nullable=False),
        pa.field("dpi", pa.float64()),
        pa.field("frame_format", pa.string()),  # null: no frame
        pa.field("frame_width", pa.int64()),
        pa.field("frame_height", pa.int64()),
        pa.field("frame_data", pa.binary()),
        pa.field("frame_masked", pa.list_(box)),
        pa.field("element_role", pa.string()),  # null: no element
        pa.field("element_name", pa.string()),
        pa.field("element_states", pa.list_(pa.string())),
        pa.field("element_box", box),
        pa.field("element_ancestors", pa.list_(pa.string())),
        pa.field("element_protected", pa.bool_()),
    ])


def observation_hash(o: Observation) -> str:
    """SHA-256 of one observation's values: tells a retry (the same) from a reused (session_id, action_seq)."""
    return hashlib.sha256(msgpack.packb(o.to_plain(), use_bin_type=True)).hexdigest()


def day_of(t_wall_ns: int) -> str:
    import datetime as dt

    return (dt.date(1970, 1, 1) + dt.timedelta(days=t_wall_ns // _NS_PER_DAY)).isoformat()


def relative_path(device_id: str, session_id: str, day: str, hashes: list[str]) -> str:
    session = hashlib.sha256(session_id.encode()).hexdigest()[:16]
    content = hashlib.sha256("".join(sorted(hashes)).encode()).hexdigest()[:24]
    return f"{OBSERVATIONS_DIR}/date={day}/device={device_id}/{session}-{content}.parquet"


def _row(o: Observation) -> dict[str, Any]:
    f, e = o.frame, o.element
    return {
        "session_id": o.session_id, **{name: getattr(o, name) for name in _INTS}, "trigger": o.trigger,
        "monitors": [_box(b) for b in o.monitors], "dpi": o.dpi,
        "frame_format": f and f.format, "frame_width": f and f.width, "frame_height": f and f.height,
        "frame_data": f and f.data, "frame_masked": f and [_box(b) for b in f.masked],
        "element_role": e and e.role, "element_name": e and e.name, "element_states": e and e.states,
        "element_box": e and _box(e.box), "element_ancestors": e and e.ancestors,
        "element_protected": e and e.protected,
    }


def _box(b: Box) -> dict[str, int]:
    return {"x": b.x, "y": b.y, "width": b.width, "height": b.height}


def to_parquet(observations: list[Observation]) -> bytes:
    rows = sorted((_row(o) for o in observations), key=lambda r: (r["session_id"], r["action_seq"]))
    table = pa.Table.from_pylist(rows, schema=observation_schema())
    sink = io.BytesIO()
    # The images are WebP or PNG already: zstd over them costs CPU and saves nothing, and min/max
    # statistics of the column would copy two whole images into the footer.
    others = [n for n in _leaf_paths() if n != "frame_data"]
    pq.write_table(table, sink, compression={n: ("none" if n == "frame_data" else "zstd") for n in _leaf_paths()},
                   use_dictionary=others, write_statistics=False)  # files are read whole: no statistics
    return sink.getvalue()


@functools.cache
def _leaf_paths() -> tuple[str, ...]:
    """Parquet's column paths (``monitors.list.element.x``): what its per-column options are keyed by."""
    sink = io.BytesIO()
    pq.write_table(observation_schema().empty_table(), sink)
    return tuple(c.path for c in pq.ParquetFile(pa.BufferReader(sink.getvalue())).schema)


def from_parquet(data: bytes, *, frames: bool = True) -> list[Observation]:
    columns = None if frames else [n for n in observation_schema().names if n != "frame_data"]
    table = pq.read_table(pa.BufferReader(data), schema=observation_schema(), columns=columns)
    out = []
    for r in table.to_pylist():
        frame = None
        if r["frame_format"] is not None:
            frame = Frame(r["frame_format"], r["frame_width"], r["frame_height"], r.get("frame_data") or b"",
                          [Box(**b) for b in r["frame_masked"] or []])
        element = None
        if r["element_role"] is not None:
            element = Element(r["element_role"], r["element_name"], list(r["element_states"] or []),
                              Box(**r["element_box"]), list(r["element_ancestors"] or []),
                              bool(r["element_protected"]))
        out.append(Observation(
            session_id=r["session_id"], **{name: r[name] for name in _INTS}, trigger=r["trigger"],
            monitors=[Box(**b) for b in r["monitors"]], dpi=r["dpi"], frame=frame, element=element))
    return out
