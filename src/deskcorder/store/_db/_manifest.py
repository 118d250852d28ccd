"""The batch manifest in the control database: the commit of a stored batch, and the listing queries.

Upserts use ``INSERT ... ON CONFLICT``, which SQLite and PostgreSQL both
speak and SQLAlchemy builds for either from the same call; that is why the
dialect is picked here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, bindparam, case, exists, func, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite

from .._errors import BatchConflict, NotPermitted, StoreError
from ._losses import count_losses
from ._tables import batches, devices, employee_keys, employees, file_sessions, sessions, stored_observations

__all__ = ["ManifestEntry", "KeyReplaced", "lookup_batch", "commit_batch", "check_sessions_owned",
           "manifest_files", "session_device", "FilePart"]


@functools.cache
def _statements(dialect: str) -> tuple[Any, Any]:
    """The device update and session upsert for one dialect, built once (building them costs more than running them)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # An UPDATE, not an upsert: only a registered device of an employee who is not being
    # erased counts (0 rows updated means refuse). On SQLite it also takes the write lock
    # for the whole transaction, so an erasure cannot slip in between.
    dev = (update(devices)
           .where(devices.c.device_id == bindparam("d_id"),
                  exists().where(employees.c.employee_id == devices.c.employee_id,
                                 employees.c.erasure_started_at.is_(None)))
           .values(first_seen=func.coalesce(devices.c.first_seen, bindparam("now")), last_seen=bindparam("now"),
                   n_batches=devices.c.n_batches + 1, n_events=devices.c.n_events + bindparam("n")))
    ses = insert(sessions)
    ses = ses.on_conflict_do_update(index_elements=[sessions.c.session_id], set_={
        # CASE, not min()/LEAST(): the one spelling both databases accept.
        "first_t_wall_ns": case((ses.excluded.first_t_wall_ns < sessions.c.first_t_wall_ns,
                                 ses.excluded.first_t_wall_ns), else_=sessions.c.first_t_wall_ns),
        "last_t_wall_ns": case((ses.excluded.last_t_wall_ns > sessions.c.last_t_wall_ns,
                                ses.excluded.last_t_wall_ns), else_=sessions.c.last_t_wall_ns),
        "n_events": sessions.c.n_events + ses.excluded.n_events,
    })
    return dev, ses


class KeyReplaced(StoreError):
    """The batch was sealed under a data key that a selective deletion replaced meanwhile (retry: 503)."""


@dataclasses.dataclass(frozen=True)
class ManifestEntry:
    batch_id: str
    device_id: str
    content_hash: str
    files: list[str]


@dataclasses.dataclass(frozen=True)
class FilePart:
    """One written file of a batch and its events (one UTC date)."""

    path: str
    events: pa.Table


_LOOKUP_BATCH = select(batches.c.batch_id, batches.c.device_id, batches.c.content_hash, batches.c.files).where(
    batches.c.batch_id == bindparam("batch_id"))
_CURRENT_KEY = (select(employee_keys.c.key_id)
                .join(devices, devices.c.employee_id == employee_keys.c.employee_id)
                .where(devices.c.device_id == bindparam("d_id")))
# A session is its device's from its first events or its first observations (``_observations``), whichever came first.
_FOREIGN_SESSION = union_all(*(
    select(t.c.session_id, t.c.device_id).where(t.c.session_id.in_(bindparam("session_ids", expanding=True)),
                                                t.c.device_id != bindparam("device_id"))
    for t in (sessions, stored_observations))).limit(1)


def lookup_batch(conn: Connection, batch_id: str) -> ManifestEntry | None:
    row = conn.execute(_LOOKUP_BATCH, {"batch_id": batch_id}).first()
    return None if row is None else ManifestEntry(row.batch_id, row.device_id, row.content_hash, list(row.files))


def _per_session(events: pa.Table) -> list[dict[str, Any]]:
    sessions = pc.unique(events.column("session_id"))
    if len(sessions) == 1:  # the usual batch: one min_max instead of a group_by (~0.6 ms per batch)
        clock = pc.min_max(events.column("t_wall_ns")).as_py()
        return [{"session_id": sessions[0].as_py(), "t_wall_ns_min": clock["min"], "t_wall_ns_max": clock["max"],
                 "seq_count": events.num_rows}]
    return events.group_by("session_id").aggregate(
        [("t_wall_ns", "min"), ("t_wall_ns", "max"), ("seq", "count")]).to_pylist()


def commit_batch(conn: Connection, *, batch_id: str, device_id: str, content_hash: str,
                 events: pa.Table, parts: list[FilePart], received_at: dt.datetime,
                 key_id: str | None = None) -> None:
    """Register a written batch and update the counts, in the caller's transaction.

    Raises sqlalchemy IntegrityError when the batch id is already registered (a
    concurrent writer won), BatchConflict when a session belongs to another device,
    NotPermitted when the device's employee was erased meanwhile, KeyReplaced when ``key_id`` (the key
    the files were sealed under) is no longer the employee's (``_lifecycle/_selective.py``).
    """
    update_device, upsert_sessions = _statements(conn.dialect.name)
    n = events.num_rows
    # The device row comes first: the batch and session rows reference it, and on
    # SQLite this first write takes the database's write lock for the whole transaction.
    if conn.execute(update_device, {"d_id": device_id, "now": received_at, "n": n}).rowcount != 1:
        raise NotPermitted(f"device {device_id!r} is no longer registered to an employee who can be recorded "
                           f"(erased meanwhile); the batch was not stored", field="device_id")
    count_losses(conn, device_id, events)
    conn.execute(batches.insert(), {"batch_id": batch_id, "device_id": device_id, "content_hash": content_hash,
                                    "n_events": n, "received_at": received_at,
                                    "files": [p.path for p in parts]})
    per_session = _per_session(events)
    conn.execute(upsert_sessions, [
        {"session_id": r["session_id"], "device_id": device_id, "first_t_wall_ns": r["t_wall_ns_min"],
         "last_t_wall_ns": r["t_wall_ns_max"], "n_events": r["seq_count"]} for r in per_session])
    conn.execute(file_sessions.insert(), [
        {"path": p.path, "session_id": r["session_id"], "batch_id": batch_id, "n_events": r["seq_count"],
         "first_t_wall_ns": r["t_wall_ns_min"], "last_t_wall_ns": r["t_wall_ns_max"]}
        for p in parts for r in (per_session if len(parts) == 1 else _per_session(p.events))])
    # Checked again after our own writes (the write lock is held), so a concurrent
    # batch from another device that claimed the session first is seen too.
    check_sessions_owned(conn, device_id, [r["session_id"] for r in per_session])
    # Last, after our insert into batches: a deletion that replaced the key holds a lock on batches
    # (PostgreSQL) or the write lock (SQLite) to its commit, so this read sees its new key.
    if key_id is not None and conn.execute(_CURRENT_KEY, {"d_id": device_id}).scalar() != key_id:
        raise KeyReplaced(f"the data key of device {device_id!r}'s employee was replaced while this batch was "
                          f"written (some of their events were deleted); nothing was stored, retry the batch")


def check_sessions_owned(conn: Connection, device_id: str, session_ids: list[str]) -> None:
    """Raise BatchConflict if any of these sessions was recorded by another device."""
    foreign = conn.execute(_FOREIGN_SESSION, {"session_ids": session_ids, "device_id": device_id}).first()
    if foreign is not None:
        raise BatchConflict(f"session {foreign.session_id!r} was recorded by device {foreign.device_id!r}; "
                            f"device {device_id!r} cannot add events to it (a capture session belongs to "
                            f"the device that started it; start a new session id)", field="events.session_id")


def manifest_files(conn: Connection, device_ids: list[str]) -> dict[str, list[str]]:
    """Every stored file of these devices, grouped by device, in the order the batches were received."""
    query = (select(batches.c.device_id, batches.c.files)
             .where(batches.c.device_id.in_(device_ids))
             .order_by(batches.c.received_at, batches.c.batch_id))
    out: dict[str, list[str]] = {}
    for row in conn.execute(query):
        out.setdefault(row.device_id, []).extend(row.files)
    return out


def session_device(conn: Connection, session_id: str) -> str | None:
    return conn.execute(select(sessions.c.device_id).where(sessions.c.session_id == session_id)).scalar()

