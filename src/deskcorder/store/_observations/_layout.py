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

One row per observation: the ids, the frame's image as it came (WebP or PNG,
already compressed) in the binary ``frame_data`` column, stored without a second
compression, and every other field in ``details`` (``Observation.to_plain()``
as MessagePack, zstd-compressed). Files are only ever read whole, through
``from_parquet``, so a flat column per field (31 of them, with their page
headers and footer entries) would buy nothing and cost ~5 kB per file, as much
as a lossless WebP of a terminal page: these files cost ~1 kB beside their
images. The whole file is then sealed like an event file (``_events/_sealed.py``).
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


@functools.cache
def observation_schema() -> pa.Schema:
    return pa.schema([
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("action_seq", pa.int64(), nullable=False),
        pa.field("t_wall_ns", pa.int64(), nullable=False),
        pa.field("frame_data", pa.binary()),  # the image as the agent encoded it; null: no frame
        pa.field("details", pa.binary(), nullable=False),  # every other field: Observation.to_plain() in MessagePack
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


def to_parquet(observations: list[Observation]) -> bytes:
    ordered = sorted(observations, key=lambda o: (o.session_id, o.action_seq))
    details = []
    for o in ordered:
        plain = o.to_plain()
        if plain["frame"] is not None:
            plain["frame"].pop("data")
        details.append(msgpack.packb(plain, use_bin_type=True))
    table = pa.table({"session_id": [o.session_id for o in ordered], "action_seq": [o.action_seq for o in ordered],
                      "t_wall_ns": [o.t_wall_ns for o in ordered],
                      "frame_data": [o.frame.data if o.frame is not None else None for o in ordered],
                      "details": details}, schema=observation_schema())
    sink = io.BytesIO()
    # The images are WebP or PNG already: zstd over them costs CPU and saves nothing. Files are read whole and
    # by this schema: no statistics (they would copy images into the footer), no Arrow schema in the footer.
    pq.write_table(table, sink, compression={"frame_data": "none", "session_id": "zstd", "action_seq": "zstd",
                                             "t_wall_ns": "zstd", "details": "zstd"},
                   use_dictionary=["session_id"], write_statistics=False, store_schema=False)
    return sink.getvalue()


def from_parquet(data: bytes, *, frames: bool = True) -> list[Observation]:
    """The file's observations; with ``frames=False`` the images are not read (each frame's ``data`` is empty)."""
    columns = ["frame_data", "details"] if frames else ["details"]
    table = pq.read_table(pa.BufferReader(data), schema=observation_schema(), columns=columns)
    images = table.column("frame_data").to_pylist() if frames else [None] * table.num_rows
    return [_from_plain(msgpack.unpackb(d, raw=False), image)
            for d, image in zip(table.column("details").to_pylist(), images)]


def _from_plain(plain: dict[str, Any], image: bytes | None) -> Observation:
    """``to_plain``'s inverse, unchecked: what is read back was checked when it was stored, and sealed since."""
    frame, element = plain.pop("frame"), plain.pop("element")
    return Observation(
        **{k: v for k, v in plain.items() if k != "monitors"}, monitors=[Box(**b) for b in plain["monitors"]],
        frame=None if frame is None else Frame(**{**frame, "data": image or b"",
                                                  "masked": [Box(**b) for b in frame["masked"]]}),
        element=None if element is None else Element(**{**element, "box": Box(**element["box"])}))
