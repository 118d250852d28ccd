"""Selective deletion: one session or one UTC day of one employee's events, with erasure's guarantee.

Deleting the files that hold those events is not enough: a copy of an old file (a backup, an
object-store version, blocks the file system has not reused yet) would still open under the
employee's data key. So a deletion also replaces that key, and destroying the old key is what makes
the deleted events unrecoverable wherever copies went, as in erasure (``_erasure.py``):

1. Every stored file of the employee is decrypted in turn; the deleted events are dropped from it
   (a file left empty, and every file of the deleted day, is dropped whole) and the rest is sealed
   under a new data key and written beside the old one as ``<batch>-<hash16>~<key_id>.parquet``.
   Nothing is changed yet: a crash here leaves files under a key that was never stored, which nobody
   can read and the next deletion (or retention, or erasure) removes.
2. One transaction swaps the employee's key for the new one, points the manifest at the new files,
   removes the deleted sessions, fixes the counts and logs ``events.delete``. From this commit on
   the old key is gone. The transaction takes the write lock first (SQLite: the audit chain's lock;
   PostgreSQL: also a lock on ``batches``) and starts again if a batch of the employee arrived
   since step 1; a batch sealed under the old key that tries to commit later is refused by
   ``commit_batch`` (the collector answers 503, and the agent's retry is sealed under the new key).
3. The old files are deleted, with any file of theirs that no manifest row lists and that is older
   than an hour (a crashed run's), the SQLite WAL is truncated (``secure_delete`` zeroed the old
   key's row) and PostgreSQL's small tables are vacuumed.

Observation files (frames, UI elements) go through the same three steps (``_observations/_lifecycle.py``).
Batch rows stay (with fewer files and events, as after retention), so an agent retrying a deleted
batch from its spool is answered as a duplicate instead of storing it again. A day is a UTC date,
the store's partition. The cost is a rewrite of all of the employee's files, which retention bounds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections import defaultdict

import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from .._db._aggregates import forget_activity
from .._db._engine import truncate_wal, vacuum_full
from .._db._manifest import session_device
from .._db._tables import batches, devices, employee_keys, file_sessions, sessions
from .._errors import Conflict, InvalidInput, NotFound, StoreError
from .._events._backends import EventFiles
from .._events._keys import KeyWrapper, new_data_key, new_key_id
from .._events._layout import EVENTS_DIR, parquet_bytes
from .._events._reader import read_file
from .._events._sealed import seal
from .._observations import _lifecycle as _observations
from .._people import _audit
from .._people._employees import DataKey, get_employee, unwrap_key
from .._records import DeletionReport

__all__ = ["delete_events"]

_ATTEMPTS = 3
_ORPHAN_AGE_S = 3600  # younger unlisted files may belong to a batch being written right now
_VACUUMED = ("employee_keys", "sessions", "file_sessions", "batches", "devices")


@dataclasses.dataclass(frozen=True)
class _Target:
    session_id: str | None
    day: dt.date | None

    @property
    def what(self) -> str:
        return "session" if self.session_id is not None else "day"

    @property
    def day_text(self) -> str | None:
        """The day as observation rows hold it (YYYY-MM-DD), or None for a session."""
        return None if self.day is None else self.day.isoformat()

    @property
    def name(self) -> str:
        return self.session_id if self.session_id is not None else self.day.isoformat()  # type: ignore[union-attr]


@dataclasses.dataclass(frozen=True)
class _Batch:
    batch_id: str
    device_id: str
    files: tuple[str, ...]


class _Changed(Exception):
    """A batch of the employee was stored while their files were being rewritten."""


def delete_events(engine: Engine, files: EventFiles, wrapper: KeyWrapper, handle: str, *,
                  session_id: str | None, day: dt.date | None, actor: str, reason: str) -> DeletionReport:
    target = _check_target(session_id, day)
    try:
        for _ in range(_ATTEMPTS):
            try:
                return _delete(engine, files, wrapper, handle, target, actor, reason)
            except _Changed:
                continue
    except SQLAlchemyError as exc:
        raise StoreError(f"control database error while deleting {target.what} {target.name} of {handle!r}: "
                         f"{exc}; nothing was deleted, run it again") from exc
    except OSError as exc:
        raise StoreError(f"cannot rewrite the event files of {handle!r}: {exc}; nothing was deleted unless the "
                         f"audit log shows events.delete for it, run it again once that is fixed") from exc
    raise Conflict(f"{handle!r} kept uploading while their {target.what} {target.name} was being deleted; "
                   f"pause their recording (portal: Pause) and run it again")


def _check_target(session_id: str | None, day: dt.date | str | None) -> _Target:
    if (session_id is None) == (day is None):
        raise InvalidInput("name exactly one of session or day to delete", field="session")
    if session_id is not None:
        if not isinstance(session_id, str) or not 1 <= len(session_id) <= 64:
            raise InvalidInput(f"session must be a session id (1-64 characters), got {session_id!r}",
                               field="session")
        return _Target(session_id, None)
    if isinstance(day, str):
        try:
            day = dt.date.fromisoformat(day)
        except ValueError:
            raise InvalidInput(f"day must be a date written YYYY-MM-DD (UTC), got {day!r}", field="day") from None
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        raise InvalidInput(f"day must be a date (YYYY-MM-DD, UTC), got {day!r}", field="day")
    return _Target(None, day)


def _delete(engine: Engine, files: EventFiles, wrapper: KeyWrapper, handle: str, target: _Target,
            actor: str, reason: str) -> DeletionReport:
    with engine.connect() as conn:
        employee = get_employee(conn, handle)
        if employee.erasure_started_at is not None:
            raise Conflict(f"{handle!r} is being erased; finish that with: deskcorder erase --employee {handle}")
        old = _data_key(conn, employee.employee_id)
        device_ids = list(conn.execute(select(devices.c.device_id)
                                       .where(devices.c.employee_id == employee.employee_id)).scalars())
        owned = _owned_batches(conn, device_ids)
        doomed = _doomed_rows(conn, device_ids, target)
        if not doomed and not _observations.has_target(conn, device_ids, session_id=target.session_id,
                                                       day=target.day_text):
            raise NotFound(_nothing(handle, target))

    new_key, new_id = new_data_key(), new_key_id()
    old_key = unwrap_key(wrapper, old)
    renamed: dict[str, str] = {}  # old path -> new path, for every file that keeps events
    observed = _observations.ObservationRewrite([], {}, [], 0, 0)  # the same for observation files
    try:
        for batch in owned:
            for path in batch.files:
                kept = _rewrite(files, path, old_key, old.key_id, new_key, new_id, target)
                if kept is not None:
                    renamed[path] = kept
        with engine.connect() as conn:
            observed = _observations.rewrite_for_deletion(
                conn, files, wrapper, old, device_ids, new_key, new_id, session_id=target.session_id,
                day=target.day_text)
        with engine.begin() as conn:
            _audit.lock_chain(conn)  # an UPDATE: on SQLite the write lock, held to the commit
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("LOCK TABLE batches IN SHARE ROW EXCLUSIVE MODE")
            swapped = conn.execute(update(employee_keys)
                                   .where(employee_keys.c.employee_id == employee.employee_id,
                                          employee_keys.c.key_id == old.key_id)
                                   .values(key_id=new_id, wrapped_key=wrapper.wrap(new_key),
                                           master_key_id=wrapper.key_id,
                                           created_at=dt.datetime.now(dt.timezone.utc))).rowcount
            if swapped != 1:
                raise Conflict(f"the data key of {handle!r} changed meanwhile (another deletion, or an erasure); "
                               f"look at their sessions again and retry")
            if _owned_batches(conn, device_ids) != owned:
                raise _Changed()
            doomed = _doomed_rows(conn, device_ids, target)
            counts = _unlist(conn, owned, renamed, doomed, target)
            if not _observations.unlist_deleted(conn, observed, device_ids, new_id):
                raise _Changed()  # observations were stored since they were rewritten
            counts |= {"observations": observed.observations, "frames": observed.frames}
            forget_activity(conn, day=target.day, session_id=target.session_id, device_ids=device_ids)
            _audit.append(conn, actor=actor, action="events.delete",
                          target=_audit.employee_target(employee.employee_id), reason=reason,
                          details={target.what: target.name, **counts, "key_replaced": True})
    except BaseException:
        # Under a key that was never stored: unreadable anyway.
        files.delete(sorted(renamed.values()) + sorted(observed.renamed.values()))
        raise

    old_files = sorted({p for b in owned for p in b.files})
    files_deleted = files.delete(old_files + _leftovers(files, device_ids, set(renamed.values()))
                                 + observed.old_paths
                                 + _observations.leftover_paths(files, device_ids, set(observed.renamed.values())))
    vacuum_full(engine, _VACUUMED)
    return DeletionReport(employee.employee_id, target.what, target.name, counts["events"], counts["sessions"],
                          counts["files_dropped"], counts["files_rewritten"], files_deleted, truncate_wal(engine))


def _nothing(handle: str, target: _Target) -> str:
    if target.session_id is not None:
        return (f"{handle!r} has no recorded session {target.session_id!r} (see their sessions: "
                f"deskcorder export --employee {handle}, or the portal's /me/sessions)")
    return f"nothing is recorded of {handle!r} on {target.name} (UTC)"


def _data_key(conn: Connection, employee_id: str) -> DataKey:
    row = conn.execute(select(employee_keys).where(employee_keys.c.employee_id == employee_id)).first()
    if row is None:
        raise Conflict(f"employee:{employee_id} has no data key (an erasure started); nothing was deleted")
    return DataKey(row.employee_id, row.key_id, row.wrapped_key, row.master_key_id)


def _owned_batches(conn: Connection, device_ids: list[str]) -> list[_Batch]:
    rows = conn.execute(select(batches.c.batch_id, batches.c.device_id, batches.c.files)
                        .where(batches.c.device_id.in_(device_ids))
                        .order_by(batches.c.received_at, batches.c.batch_id))
    return [_Batch(r.batch_id, r.device_id, tuple(r.files)) for r in rows if r.files]


def _doomed_rows(conn: Connection, device_ids: list[str], target: _Target) -> list:
    """The manifest's (file, session) rows whose events go: the session's, or every one of the day."""
    query = (select(file_sessions.c.path, file_sessions.c.session_id, file_sessions.c.batch_id,
                    file_sessions.c.n_events, batches.c.device_id)
             .join(batches, batches.c.batch_id == file_sessions.c.batch_id)
             .where(batches.c.device_id.in_(device_ids)))
    if target.session_id is not None:
        if session_device(conn, target.session_id) not in device_ids:
            return []  # another person's session, or none: the same answer
        query = query.where(file_sessions.c.session_id == target.session_id)
    else:
        query = query.where(file_sessions.c.path.like(f"{EVENTS_DIR}/date={target.name}/%"))
    return list(conn.execute(query))


def _rewrite(files: EventFiles, path: str, old_key: bytes, old_id: str, new_key: bytes, new_id: str,
             target: _Target) -> str | None:
    """The file's events minus the deleted ones, sealed under the new key at a new path (None: nothing kept)."""
    if target.day is not None and path.startswith(f"{EVENTS_DIR}/date={target.name}/"):
        return None
    table = read_file(files, path, old_key, old_id)
    if target.session_id is not None:
        table = table.filter(pc.not_equal(table.column("session_id"), target.session_id))
        if table.num_rows == 0:
            return None
    folder, _, name = path.rpartition("/")
    new_path = f"{folder}/{name.removesuffix('.parquet').split('~')[0]}~{new_id}.parquet"
    files.put(new_path, seal(parquet_bytes(table), new_key, new_id, new_path))
    return new_path


def _unlist(conn: Connection, owned: list[_Batch], renamed: dict[str, str], doomed: list,
            target: _Target) -> dict[str, int]:
    """Point the manifest at the rewritten files, drop the deleted events' rows and fix every count."""
    per_batch: dict[str, int] = defaultdict(int)
    per_device: dict[str, int] = defaultdict(int)
    for r in doomed:
        per_batch[r.batch_id] += r.n_events
        per_device[r.device_id] += r.n_events
        conn.execute(delete(file_sessions).where(file_sessions.c.path == r.path,
                                                 file_sessions.c.session_id == r.session_id))
    for old, new in renamed.items():
        conn.execute(update(file_sessions).where(file_sessions.c.path == old).values(path=new))
    for batch in owned:
        conn.execute(update(batches).where(batches.c.batch_id == batch.batch_id)
                     .values(files=[renamed[p] for p in batch.files if p in renamed],
                             n_events=batches.c.n_events - per_batch.get(batch.batch_id, 0)))
    for device_id, n in per_device.items():
        conn.execute(update(devices).where(devices.c.device_id == device_id)
                     .values(n_events=devices.c.n_events - n))
    n_sessions = 0
    for session_id in sorted({r.session_id for r in doomed}):
        left = conn.execute(select(func.sum(file_sessions.c.n_events), func.min(file_sessions.c.first_t_wall_ns),
                                   func.max(file_sessions.c.last_t_wall_ns))
                            .where(file_sessions.c.session_id == session_id)).one()
        if not left[0]:
            conn.execute(delete(sessions).where(sessions.c.session_id == session_id))
            n_sessions += 1
        else:  # a session that ran past midnight keeps its other day
            conn.execute(update(sessions).where(sessions.c.session_id == session_id)
                         .values(n_events=left[0], first_t_wall_ns=left[1], last_t_wall_ns=left[2]))
    dropped = {p for b in owned for p in b.files} - set(renamed)
    return {"events": sum(per_batch.values()), "sessions": n_sessions, "files_dropped": len(dropped),
            "files_rewritten": len(renamed)}


def _leftovers(files: EventFiles, device_ids: list[str], listed: set[str]) -> list[str]:
    """Files in the employee's folders that no manifest row lists and old enough not to be mid-write."""
    cutoff = time.time() - _ORPHAN_AGE_S
    folders = [f"{EVENTS_DIR}/date={d.isoformat()}/device={dev}" for d in files.partition_dates() for dev in device_ids]
    return [f.key for folder in folders for f in files.list(folder) if f.key not in listed and f.mtime < cutoff]
