"""Erasure of one employee (GDPR Art. 17): their key first, then their files, then their rows.

The order is what makes it safe to interrupt and re-run (``deskcorder erase``
again after a crash finishes the job):

1. One transaction marks the employee as being erased and deletes their
   wrapped data key (and logs ``erasure.start``). From this commit on their
   events are unrecoverable, wherever copies of the files went, and the store
   neither stores nor reads anything of theirs. The SQLite WAL is then
   checkpointed and truncated and ``secure_delete`` has zeroed the old row, so
   the wrapped key is gone from the disk files too.
2. Their event and observation files are deleted: every file the manifests list
   for their devices, and every other file in their device folders (crash leftovers),
   on local disk or in the object store (``_events/_backends.py``).
3. One transaction deletes their manifest rows, sessions, devices (their
   credentials, enrolment tokens and rate-limit buckets go with them, ON DELETE
   CASCADE), consents, failed-login counts and the employee row, and logs
   ``erasure.complete``. The employee row goes last, so an interrupted run can
   still be found by handle and resumed.

The audit log keeps both entries, which name the employee only by the opaque
``employee_id``; with the employee row gone, nothing maps it back to a person.

PostgreSQL keeps dead row versions until VACUUM, so step 1 and 3 end with
``VACUUM FULL`` of the small tables that held personal data and the key. Its
write-ahead log segments still hold the deleted key until PostgreSQL recycles
them; the ciphertext stays unreadable only as long as the master key is not
also taken with those segments (see docs on backups).
"""

from __future__ import annotations

import datetime as dt
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from .._people import _audit
from .._db._manifest import manifest_files
from .._db._engine import truncate_wal
from .._errors import NotFound, StoreError
from .._events._backends import EventFiles
from .._events._layout import EVENTS_DIR
from .._observations import _lifecycle as _observations
from .._people._login_throttle import clear_failures
from .._people._employees import get_employee
from .._records import ErasureReport
from .._db._tables import batches, consents, devices, employee_keys, employees, file_sessions, sessions

__all__ = ["erase_employee"]

# Small tables that held personal data or the key: rewritten on PostgreSQL so dead rows go.
_VACUUMED = ("employee_keys", "employees", "consents", "devices", "portal_accounts", "portal_logins",
             "recording_pauses", "device_credentials", "enrolment_tokens", "login_failures")


def erase_employee(engine: Engine, files: EventFiles, handle: str, actor: str, reason: str) -> ErasureReport:
    try:
        return _erase(engine, files, handle, actor, reason)
    except SQLAlchemyError as exc:
        raise StoreError(f"control database error while erasing {handle!r}: {exc}; run the same `deskcorder erase` "
                         f"again: it resumes where this one stopped") from exc
    except OSError as exc:
        raise StoreError(f"cannot delete the event files of {handle!r}: {exc}; run the same `deskcorder erase` "
                         f"again once that is fixed: it resumes where this one stopped") from exc


def _erase(engine: Engine, files: EventFiles, handle: str, actor: str, reason: str) -> ErasureReport:
    with engine.begin() as conn:
        _audit.lock_chain(conn)
        try:
            employee = get_employee(conn, handle)
        except NotFound as exc:  # also what a re-run finds once a previous run has finished
            raise NotFound(f"no employee {handle!r} to erase: the handle is misspelt, was never added, or was "
                           f"already erased (see: deskcorder audit list --action erasure.complete)") from exc
        employee_id = employee.employee_id
        target = _audit.employee_target(employee_id)
        key_destroyed = conn.execute(delete(employee_keys).where(employee_keys.c.employee_id == employee_id)
                                     ).rowcount == 1
        if employee.erasure_started_at is None:
            conn.execute(update(employees).where(employees.c.employee_id == employee_id)
                         .values(erasure_started_at=dt.datetime.now(dt.timezone.utc)))
            _audit.append(conn, actor=actor, action="erasure.start", target=target, reason=reason,
                          details={"key_destroyed": key_destroyed})
    _vacuum(engine)
    truncate_wal(engine)

    with engine.connect() as conn:
        device_ids = list(conn.execute(select(devices.c.device_id).where(devices.c.employee_id == employee_id))
                          .scalars())
        listed = [p for paths in (manifest_files(conn, device_ids) if device_ids else {}).values() for p in paths]
        listed += _observations.erasure_paths(conn, files, device_ids)  # their frames and UI elements
    # Their folders, one per date: whatever else is in them (a batch that crashed before its manifest
    # commit) goes too, and so do the folders, even ones emptied earlier by retention or a crash.
    folders = [f"{EVENTS_DIR}/date={date.isoformat()}/device={d}" for date in files.partition_dates()
               for d in device_ids]
    leftovers = [f.key for folder in folders for f in files.list(folder)]
    files_deleted = files.delete(sorted(set(listed) | set(leftovers)))
    for folder in folders:
        files.prune(folder)
    _observations.prune_device_folders(files, device_ids)

    with engine.begin() as conn:
        _audit.lock_chain(conn)
        owned_batches = select(batches.c.batch_id).where(batches.c.device_id.in_(device_ids))
        conn.execute(delete(file_sessions).where(file_sessions.c.batch_id.in_(owned_batches)))
        n_batches = conn.execute(delete(batches).where(batches.c.device_id.in_(device_ids))).rowcount
        n_sessions = conn.execute(delete(sessions).where(sessions.c.device_id.in_(device_ids))).rowcount
        _observations.erase_rows(conn, device_ids)
        n_devices = conn.execute(delete(devices).where(devices.c.employee_id == employee_id)).rowcount
        n_consents = conn.execute(delete(consents).where(consents.c.employee_id == employee_id)).rowcount
        conn.execute(delete(employee_keys).where(employee_keys.c.employee_id == employee_id))
        clear_failures(conn, handle)  # their portal login is their handle
        conn.execute(delete(employees).where(employees.c.employee_id == employee_id))
        _audit.append(conn, actor=actor, action="erasure.complete", target=target, reason=reason,
                      details={"files_deleted": files_deleted, "batches": n_batches, "sessions": n_sessions,
                               "devices": n_devices, "consents": n_consents})
    _vacuum(engine)
    wal_truncated = truncate_wal(engine)
    return ErasureReport(employee_id, key_destroyed, files_deleted, n_batches, n_sessions, n_devices, n_consents,
                         wal_truncated)


def _vacuum(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in _VACUUMED:
            conn.exec_driver_sql(f"VACUUM FULL {table}")
