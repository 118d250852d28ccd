"""The control database: engine setup, the manifest commit, and the listing queries.

Upserts use ``INSERT ... ON CONFLICT``, which SQLite and PostgreSQL both
speak and SQLAlchemy builds for either from the same call; that is why the
dialect is picked here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Engine, bindparam, case, create_engine, event, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ._errors import BatchConflict, NotPermitted, StoreError
from ._tables import batches, devices, employees, file_sessions, sessions

__all__ = ["make_engine", "ManifestEntry", "lookup_batch", "commit_batch", "check_sessions_owned",
           "manifest_files", "session_device", "as_utc", "truncate_wal", "FilePart"]

_SQLITE_BUSY_TIMEOUT_MS = 30_000
# Connections kept open per process. The collector runs blocking store calls on up to 40 worker
# threads (anyio's default); with SQLAlchemy's default of 5, every connection beyond the fifth
# was closed on return, so under load ~0.4 of all status polls started a new PostgreSQL backend
# (3.7 of the 4 ms PostgreSQL spent per poll; benchmarks/status_poll.py). Size max_connections
# (or a PgBouncer) for processes x _POOL_SIZE.
_POOL_SIZE = 20
_POOL_OVERFLOW = 20


def make_engine(url: str) -> Engine:
    engine = create_engine(url, pool_size=_POOL_SIZE, max_overflow=_POOL_OVERFLOW)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif engine.dialect.name != "postgresql":
        engine.dispose()
        raise StoreError(f"unsupported control database {engine.dialect.name!r} in {url!r}; "
                         f"use sqlite:///path or postgresql://...")
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers (the listing endpoints, the dataset builder) never block the writer.
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk when it returns, in WAL mode too; the collector acks after it.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    # Deleted rows (an erased employee's wrapped key, handle, consents) are overwritten with
    # zeros instead of lingering in free space; truncate_wal then removes the old WAL copies.
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def truncate_wal(engine: Engine, attempts: int = 50) -> bool:
    """SQLite: copy the WAL into the database and empty it, so no old page versions remain on disk.

    Needs a moment with no reader mid-query (other processes included); retried
    for about a second. Returns whether it succeeded; always True on PostgreSQL,
    which has no such file in the data dir.
    """
    if engine.dialect.name != "sqlite":
        return True
    for _ in range(attempts):
        with engine.connect() as conn:
            busy, _log, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            conn.commit()
        if not busy:
            return True
        time.sleep(0.02)
    return False


def as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


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
_FOREIGN_SESSION = select(sessions.c.session_id, sessions.c.device_id).where(
    sessions.c.session_id.in_(bindparam("session_ids", expanding=True)),
    sessions.c.device_id != bindparam("device_id")).limit(1)


def lookup_batch(conn: Connection, batch_id: str) -> ManifestEntry | None:
    row = conn.execute(_LOOKUP_BATCH, {"batch_id": batch_id}).first()
    return None if row is None else ManifestEntry(row.batch_id, row.device_id, row.content_hash, list(row.files))


def _per_session(events: pa.Table) -> list[dict[str, Any]]:
    return events.group_by("session_id").aggregate(
        [("t_wall_ns", "min"), ("t_wall_ns", "max"), ("seq", "count")]).to_pylist()


def commit_batch(conn: Connection, *, batch_id: str, device_id: str, content_hash: str,
                 events: pa.Table, parts: list[FilePart], received_at: dt.datetime) -> None:
    """Register a written batch and update the counts, in the caller's transaction.

    Raises sqlalchemy IntegrityError when the batch id is already registered (a
    concurrent writer won), BatchConflict when a session belongs to another device,
    NotPermitted when the device's employee was erased meanwhile.
    """
    update_device, upsert_sessions = _statements(conn.dialect.name)
    n = events.num_rows
    # The device row comes first: the batch and session rows reference it, and on
    # SQLite this first write takes the database's write lock for the whole transaction.
    if conn.execute(update_device, {"d_id": device_id, "now": received_at, "n": n}).rowcount != 1:
        raise NotPermitted(f"device {device_id!r} is no longer registered to an employee who can be recorded "
                           f"(erased meanwhile); the batch was not stored", field="device_id")
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
        for p in parts for r in _per_session(p.events)])
    # Checked again after our own writes (the write lock is held), so a concurrent
    # batch from another device that claimed the session first is seen too.
    check_sessions_owned(conn, device_id, [r["session_id"] for r in per_session])


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

