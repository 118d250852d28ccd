"""Observations through erasure, retention, selective deletion and subject-access export.

The lifecycle modules (``_lifecycle/``) call these at the matching step of
their own procedure, so observations go wherever events go and in the same
order (key first, then files, then rows):

- erasure: ``erasure_paths`` (listed files and leftovers in the device
  folders) are deleted with the event files; ``erase_rows`` in the final
  transaction.
- retention: ``expire_partitions`` deletes each expired ``observations/date=D``
  partition with its own ``retention.delete`` audit entry (target
  ``partition:observations/date=D``): observation days need not have events.
- selective deletion (a session or a day; the data key is replaced):
  ``rewrite_for_deletion`` re-seals every other file under the new key in step 1,
  ``unlist_deleted`` repoints the manifest in step 2's transaction, and the old
  files are deleted in step 3 (``ObservationRewrite.old_paths``).
- export: ``export_observations`` writes ``observations.jsonl`` and each frame
  as an image file (``frames/<session16>/<action_seq>.webp``) from what
  ``_read.load_observations`` decrypted before the export was audited.

Rows of ``stored_observations`` outlive retention and deletion with ``path``
NULL, so an agent's retry of a deleted observation is a duplicate, never stored again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
import zipfile
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, or_, select, update

from ...observations import Observation
from .._db._tables import devices, observation_files, stored_observations
from .._events._backends import EventFiles
from .._events._keys import KeyWrapper
from .._events._sealed import seal
from .._people import _audit
from .._people._employees import unwrap_key
from ._layout import OBSERVATIONS_DIR, to_parquet
from ._read import read_observation_file

__all__ = ["erasure_paths", "erase_rows", "expire_partitions", "ObservationRewrite", "rewrite_for_deletion",
           "unlist_deleted", "export_observations", "listed_paths", "frame_name"]

_ORPHAN_AGE_S = 3600  # younger unlisted files may belong to an upload being written right now


def listed_paths(conn: Connection, device_ids: list[str]) -> list[str]:
    if not device_ids:
        return []
    return list(conn.execute(select(observation_files.c.path).where(observation_files.c.device_id.in_(device_ids))
                             .order_by(observation_files.c.path)).scalars())


def _dates(files: EventFiles) -> list[str]:
    return [name for name in files.folders(OBSERVATIONS_DIR) if name.startswith("date=")]


def _device_folders(files: EventFiles, device_ids: list[str]) -> list[str]:
    return [f"{OBSERVATIONS_DIR}/{date}/device={d}" for date in _dates(files) for d in device_ids]


# -- erasure -------------------------------------------------------------------------------------

def erasure_paths(conn: Connection, files: EventFiles, device_ids: list[str]) -> list[str]:
    """Every observation file of these devices: listed, and whatever else is in their folders."""
    leftovers = [f.key for folder in _device_folders(files, device_ids) for f in files.list(folder)]
    return sorted(set(listed_paths(conn, device_ids)) | set(leftovers))


def prune_device_folders(files: EventFiles, device_ids: list[str]) -> None:
    for folder in _device_folders(files, device_ids):
        files.prune(folder)


def erase_rows(conn: Connection, device_ids: list[str]) -> int:
    """Delete the devices' observation rows (before the device rows); returns the files unlisted."""
    if not device_ids:
        return 0
    conn.execute(delete(stored_observations).where(stored_observations.c.device_id.in_(device_ids)))
    return conn.execute(delete(observation_files).where(observation_files.c.device_id.in_(device_ids))).rowcount


# -- retention -----------------------------------------------------------------------------------

def expire_partitions(engine: Engine, files: EventFiles, *, before: dt.date, after: dt.date, actor: str,
                      reason_old: str, reason_ahead: str, details: dict[str, Any], dry_run: bool) -> list[tuple]:
    """Delete every observation partition dated before ``before`` or after ``after``; one audit entry each.

    Returns (date, files, observations, sessions) per partition deleted (or that would be, with ``dry_run``).
    """
    with engine.connect() as conn:
        days = set(conn.execute(select(observation_files.c.day).distinct().where(
            or_(observation_files.c.day < before.isoformat(), observation_files.c.day > after.isoformat()))).scalars())
    days |= {d[len("date="):] for d in _dates(files)
             if d[len("date="):] < before.isoformat() or d[len("date="):] > after.isoformat()}
    out = []
    cutoff = time.time() - _ORPHAN_AGE_S
    for day in sorted(days):
        folder = f"{OBSERVATIONS_DIR}/date={day}"
        with engine.begin() as conn:
            if not dry_run:
                _audit.lock_chain(conn)
            rows = conn.execute(select(observation_files.c.path, observation_files.c.session_id,
                                       observation_files.c.n_observations, devices.c.employee_id)
                                .join(devices, devices.c.device_id == observation_files.c.device_id)
                                .where(observation_files.c.day == day)).all()
            paths = {r.path for r in rows}
            orphans = {f.key for f in files.list(folder) if f.key not in paths and f.mtime < cutoff}
            if not paths and not orphans:
                if not dry_run:
                    files.prune(folder)
                continue
            n_obs, sessions = sum(r.n_observations for r in rows), sorted({r.session_id for r in rows})
            out.append((dt.date.fromisoformat(day), len(paths) + len(orphans), n_obs, sessions))
            if dry_run:
                continue
            _unlist(conn, sorted(paths))
            ahead = day > after.isoformat()
            _audit.append(conn, actor=actor, action="retention.delete",
                          target=f"partition:{OBSERVATIONS_DIR}/date={day}",
                          reason=reason_ahead if ahead else reason_old,
                          details={"date": day, "kind": "observations", "files": len(paths),
                                   "unlisted_files": len(orphans), "observations": n_obs,
                                   "sessions": len(sessions), "employee_ids": sorted({r.employee_id for r in rows}),
                                   **details, **({"ahead_of_clock": True} if ahead else {})})
        files.delete(sorted(paths | orphans))
        files.prune(folder)
    return out


def _unlist(conn: Connection, paths: list[str]) -> None:
    for start in range(0, len(paths), 500):
        chunk = paths[start:start + 500]
        conn.execute(update(stored_observations).where(stored_observations.c.path.in_(chunk)).values(path=None))
        conn.execute(delete(observation_files).where(observation_files.c.path.in_(chunk)))


# -- selective deletion --------------------------------------------------------------------------

@dataclasses.dataclass
class ObservationRewrite:
    old_paths: list[str]  # every listed file of the employee at step 1: deleted in step 3
    renamed: dict[str, str]  # old path -> new path (re-sealed under the new key), for files that keep data
    dropped: list[str]  # files whose observations are all deleted
    observations: int  # observations deleted
    frames: int


def has_target(conn: Connection, device_ids: list[str], *, session_id: str | None, day: str | None) -> bool:
    """Whether these devices stored observations of that session or day (a session may hold only those)."""
    if not device_ids:
        return False
    match = observation_files.c.session_id == session_id if session_id is not None else observation_files.c.day == day
    return conn.execute(select(observation_files.c.path)
                        .where(observation_files.c.device_id.in_(device_ids), match).limit(1)).first() is not None


def rewrite_for_deletion(conn: Connection, files: EventFiles, wrapper: KeyWrapper, old_key_row: Any,
                         device_ids: list[str], new_key: bytes, new_id: str, *, session_id: str | None,
                         day: str | None) -> ObservationRewrite:
    """Step 1: every observation file of these devices re-sealed under the new key, minus the deleted ones."""
    rows = conn.execute(select(observation_files).where(observation_files.c.device_id.in_(device_ids))
                        .order_by(observation_files.c.path)).all() if device_ids else []
    old_key = unwrap_key(wrapper, old_key_row)
    out = ObservationRewrite([r.path for r in rows], {}, [], 0, 0)
    for r in rows:
        if r.session_id == session_id or r.day == day:  # a file holds one session and one day
            out.dropped.append(r.path)
            out.observations += r.n_observations
            out.frames += r.n_frames
            continue
        kept = read_observation_file(files, r.path, old_key, r.key_id)
        folder, _, name = r.path.rpartition("/")
        new_path = f"{folder}/{name.removesuffix('.parquet').split('~')[0]}~{new_id}.parquet"
        files.put(new_path, seal(to_parquet(kept), new_key, new_id, new_path))
        out.renamed[r.path] = new_path
    return out


def unlist_deleted(conn: Connection, rewrite: ObservationRewrite, device_ids: list[str], new_id: str) -> bool:
    """Step 2, in the deletion's transaction: False when an upload added a file since step 1 (start again)."""
    if listed_paths(conn, device_ids) != rewrite.old_paths:
        return False
    _unlist(conn, rewrite.dropped)
    for old, new in rewrite.renamed.items():
        conn.execute(update(observation_files).where(observation_files.c.path == old)
                     .values(path=new, key_id=new_id))
        conn.execute(update(stored_observations).where(stored_observations.c.path == old).values(path=new))
    return True


def leftover_paths(files: EventFiles, device_ids: list[str], listed: set[str]) -> list[str]:
    """Unlisted files in the devices' folders old enough not to be mid-upload (a crashed run's)."""
    cutoff = time.time() - _ORPHAN_AGE_S
    return [f.key for folder in _device_folders(files, device_ids) for f in files.list(folder)
            if f.key not in listed and f.mtime < cutoff]


# -- export --------------------------------------------------------------------------------------

def frame_name(o: Observation) -> str:
    """Where an exported observation's frame goes in the archive (session ids are not safe as folder names)."""
    assert o.frame is not None
    return f"frames/{hashlib.sha256(o.session_id.encode()).hexdigest()[:16]}/{o.action_seq}.{o.frame.format}"


def export_observations(zf: zipfile.ZipFile, observations: list[Observation]) -> int:
    """``observations.jsonl`` (everything but the image bytes, each frame's file named) and every frame as an
    image file (``frames/...``); returns how many frames. ``observations``: ``load_observations``' list."""
    n_frames = 0
    lines = []
    for o in observations:
        plain = o.to_plain()
        if o.frame is not None:
            name = frame_name(o)
            zf.writestr(name, o.frame.data, compress_type=zipfile.ZIP_STORED)  # WebP or PNG: compressed already
            plain["frame"] = {k: v for k, v in plain["frame"].items() if k != "data"} | {"file": name}
            n_frames += 1
        plain["time"] = dt.datetime.fromtimestamp(o.t_wall_ns // 1_000_000_000, dt.timezone.utc).isoformat()
        lines.append(json.dumps(plain, ensure_ascii=False) + "\n")
    zf.writestr("observations.jsonl", "".join(lines))
    return n_frames


def session_frames(conn: Connection, session_id: str) -> int:
    return int(conn.execute(select(func.coalesce(func.sum(observation_files.c.n_frames), 0))
                            .where(observation_files.c.session_id == session_id)).scalar() or 0)
