"""``EventStore``: events in encrypted Parquet files, with the control database as their manifest.

Durability (what a 200 from the collector promises)
--------------------------------------------------
``write_batch`` returns only after, in this order:

1. each date's part of the batch is encrypted under its employee's data key
   (``_events/_sealed.py``) and written durably (``_events/_backends.py``: on local disk a
   temp file next to its final path, fsynced, atomically renamed, the folder
   fsynced; in an object store a PUT the store acknowledged);
2. one control-database transaction has inserted the batch's manifest row
   (``batches``: batch_id, device_id, content_hash, n_events, received_at,
   files, plus per-file session counts in ``file_sessions``) and updated the
   ``devices`` and ``sessions`` counts, and committed (SQLite: WAL with
   ``synchronous=FULL``, so the commit is on disk).

Readers read only the files the manifest lists. So a crash anywhere before
the commit leaves at most a temp file or an *orphan* file that no reader sees,
and no ack was sent; the client retries, and because a file's path is a pure
function of the batch (``_events/_layout.relative_path``), the retry rewrites the same
path and commits. A crash after the commit but before the ack is answered on
retry as a duplicate. Every acknowledged batch is therefore stored exactly
once, and nothing unacknowledged is half-visible.

Idempotency and conflicts
-------------------------
The batch id is the manifest's primary key. A repeat with the same content
hash (``wire.content_hash``; for a batch stored before that hash, the
MessagePack one, ``wire.legacy_content_hash``) is a duplicate (stored=0,
nothing written); with another hash it is a ``BatchConflict`` and nothing is
written. Concurrent posts of one batch id in
this process are serialised by a lock stripe, so the second one finds the
first one's row; across processes the primary key decides: the loser's
insert fails with an IntegrityError and it answers duplicate or conflict.
A loser with different content never overwrote the winner's file, since the
content hash is part of the file name. Orphans and temp files left by
crashes or lost races are never read; retention and erasure delete them with
their date or device folder.

Not deduplicated: the same (session_id, seq) sent again under a *new* batch
id is stored twice; the batch id is the unit of idempotency.

Privacy
-------
A batch is stored only from a device registered to an employee, and only if
every event falls inside that employee's consent (``_people/_consent.py``); otherwise
``NotPermitted`` and nothing is written. Every read of events names who reads
and why, and is written to the hash-chained audit log (``_people/_audit.py``), as are
policy and consent changes, device registrations, exports, erasures and
retention deletions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, inspect, make_url, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..wire import Batch, legacy_content_hash
from ._people import _audit, _consent, _enrolment, _employees
from ._lifecycle import _erasure, _export, _retention, _selective
from ._people._accounts import PortalRecords
from ._people._audit import AuditEntry
from ._db._manifest import FilePart, KeyReplaced, ManifestEntry, check_sessions_owned, commit_batch, lookup_batch
from ._db._engine import as_utc, make_engine
from ._events._clock import Clock, check_not_ahead, check_skew, utc_now
from ._errors import BatchConflict, InvalidInput, NotFound, NotPermitted, StoreError
from ._events._backends import EventFiles, open_event_files
from ._events._layout import parquet_bytes, relative_path, split_by_date
from ._events._keys import KeyWrapper, default_key_wrapper
from ._db._migrate import upgrade_to_head
from ._db._rate_limits import TokenDecision, take_token
from ._private import FILE_MODE, private_dir, private_file, tighten
from ._events._reader import READ_SCHEMA, load_events, select_files
from ._records import (
    ConsentRecord,
    DeletionReport,
    DeviceCredential,
    DeviceInfo,
    DeviceStatus,
    EmployeeInfo,
    ErasureReport,
    PolicyRecord,
    RetentionDeletion,
    SessionInfo,
    WriteResult,
)
from ._events._sealed import seal
from ._observations._api import ObservationMethods  # write_observations, read_observations, read_frame
from ._db._settings import resolve_events_url
from ._db._aggregates import ActivityTotals, activity_totals, backfill_activity, record_activity
from ._db import _status_changes
from ._db._status_log import StatusLog
from ._db._tables import devices, employee_keys, sessions

__all__ = ["EventStore", "READ_SCHEMA"]

_LOCK_STRIPES = 64
CONTROL_DB = "control.db"


class EventStore(ObservationMethods):
    """Stores validated batches durably and encrypted, reads events back for named purposes, and
    keeps the people, consent, policy and audit records that decide what may be stored and read.

    Thread-safe: the collector calls ``write_batch`` from many worker threads.
    ``key_wrapper`` defaults to ``DESKCORDER_MASTER_KEY`` or ``<data_dir>/master.key``.
    ``events_url`` puts the event files elsewhere than ``<data_dir>/events`` (``s3://BUCKET/PREFIX?...``,
    ``file:///PATH``, see ``_events/_backends.py``); given once, it is recorded in the control database.
    ``create=False`` opens only an existing store: NotFound, naming the path and ``deskcorder init``, when
    the control database is not there (a mistyped data dir must not become a new store with a new key).
    ``max_clock_skew_s`` / ``clock``: how far ahead of which clock an event may be stamped (``_events/_clock.py``;
    a collector sets ``MAX_CLOCK_SKEW_S`` by default; None, the library's default, checks nothing).
    The data dir is made 0700 and every file the store creates in it 0600 (``_private.py``).
    """

    def __init__(self, data_dir: Path | str, *, database_url: str | None = None,
                 key_wrapper: KeyWrapper | None = None, events_url: str | None = None, create: bool = True,
                 max_clock_skew_s: float | None = None, clock: Clock | None = None):
        self.data_dir = Path(data_dir).expanduser()
        # Events stamped further ahead of ``clock`` than this are refused (see _events/_clock.py); None: not checked.
        self.max_clock_skew_s = check_skew(max_clock_skew_s)
        self._clock = clock or utc_now
        if database_url is None:
            database_url = f"sqlite:///{(self.data_dir / CONTROL_DB).resolve()}"
        sqlite_file = _sqlite_file(database_url)
        if not create and sqlite_file is not None and not sqlite_file.exists():
            raise NotFound(_no_store(self.data_dir, "the folder does not exist" if not self.data_dir.exists()
                                     else f"no control database {sqlite_file} yet"))
        self._engine = make_engine(database_url)
        # SQLite cannot notify: committed status changes are also appended here for the collector (_status_log.py).
        self.status_log = StatusLog(sqlite_file) if sqlite_file is not None else None
        try:
            if not create and sqlite_file is None and not _holds_schema(self._engine):
                shown = self._engine.url.render_as_string(hide_password=True)
                raise NotFound(_no_store(self.data_dir, f"the control database {shown} holds none yet"))
            try:
                private_dir(self.data_dir)
                if sqlite_file is not None:
                    private_file(sqlite_file)  # before SQLite opens it: its -wal and -shm get this mode
                    for suffix in ("-wal", "-shm", "-journal"):
                        tighten(sqlite_file.with_name(sqlite_file.name + suffix), FILE_MODE)
            except OSError as exc:
                raise StoreError(f"cannot create the data dir {self.data_dir}: {exc.strerror or exc}") from exc
            upgrade_to_head(self._engine)
        except StoreError:
            self._engine.dispose()
            raise
        except Exception as exc:
            self._engine.dispose()
            shown = self._engine.url.render_as_string(hide_password=True)
            raise StoreError(f"cannot open the control database {shown}: {exc}") from exc
        try:
            # A new master key only for a store without data keys (see _events/_keys.py).
            self._wrapper = key_wrapper or default_key_wrapper(self.data_dir,
                                                               create=not _holds_data_keys(self._engine))
            # Opened before it is recorded, so a url pyarrow cannot use is never recorded.
            requested = open_event_files(events_url, self.data_dir) if events_url is not None else None
            with self._engine.begin() as conn:
                self.events_url = resolve_events_url(conn, events_url, str(self.data_dir / "events"))
            self.files: EventFiles = requested or open_event_files(self.events_url, self.data_dir)
            # Once, for a store from before migration 0009: its batches' activity counts (_db/_aggregates.py).
            backfill_activity(self._engine, self.files, self._wrapper)
        except BaseException:
            self._engine.dispose()
            raise
        self._stripes = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self._closed = False
        self._status_listeners: list[Callable[[str], None]] = []
        # Portal accounts, logins and recording pauses (see _people/_accounts.py).
        self.portal = PortalRecords(self._db)

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._engine.dispose()

    @contextlib.contextmanager
    def _db(self, what: str, *, write: bool) -> Iterator[Connection]:
        """A connection (a transaction when ``write``), with database failures turned into StoreError."""
        self._check_open()
        try:
            with (self._engine.begin() if write else self._engine.connect()) as conn:
                try:
                    yield conn
                finally:
                    changed = _status_changes.pending(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"control database error while {what}: {exc}; nothing was changed, retry") from exc
        if changed and self.status_log is not None:  # and the collector of this SQLite store, if in another process
            self.status_log.append(changed)
        for key in changed:  # committed: tell who listens (the collector's status push)
            for listener in self._status_listeners:
                try:
                    listener(key)
                except Exception:  # a listener's bug must not turn a committed change into an error
                    logging.getLogger("deskcorder.store").exception("status listener failed on %s", key)

    # -- recording status changes (see _db/_status_changes.py) ------------------------------------

    STATUS_CHANNEL = _status_changes.CHANNEL  # PostgreSQL: NOTIFY channel of every status change

    def on_status_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(key)`` after each committed change of a device's recording status in this process.

        ``key``: ``employee:<employee_id>``, ``device:<device_id>`` or ``all``. It runs in the thread that
        made the change, so it must be quick and thread-safe (hand the key over, do not work on it).
        """
        self._status_listeners.append(listener)

    @staticmethod
    def status_change_from(payload: str) -> str | None:
        """The key in a ``STATUS_CHANNEL`` notification made by another process; None for this process's own."""
        return _status_changes.parse_payload(payload)

    # -- people, devices, policy, consent ------------------------------------------------------

    def add_employee(self, handle: str, *, actor: str, display_name: str | None = None) -> EmployeeInfo:
        """Create an employee and their data key. ``handle`` is their login."""
        with self._db(f"adding employee {handle!r}", write=True) as conn:
            return _employees.add_employee(conn, self._wrapper, handle, display_name, actor)

    def employee(self, handle: str) -> EmployeeInfo:
        with self._db("looking up an employee", write=False) as conn:
            return _employees.get_employee(conn, handle)

    def employees(self) -> list[EmployeeInfo]:
        with self._db("listing employees", write=False) as conn:
            return _employees.list_employees(conn)

    def register_device(self, device_id: str, employee: str, hostname: str, *, actor: str) -> DeviceInfo:
        """Bind a device to an employee (by handle); repeating it for the same employee is a no-op."""
        with self._db(f"registering device {device_id!r}", write=True) as conn:
            return _employees.register_device(conn, device_id, employee, hostname, actor)

    # -- device enrolment (see _people/_enrolment.py) ---------------------------------------------------

    def issue_enrolment_token(self, employee: str, *, actor: str, ttl_s: float = 86400) -> str:
        """A one-time token that enrols one device of ``employee`` (handle); shown once, only its hash is kept."""
        _require(actor=actor)
        with self._db(f"issuing an enrolment token for {employee!r}", write=True) as conn:
            return _enrolment.issue_token(conn, employee, actor, ttl_s)

    def enrol_device(self, token: str, device_id: str, hostname: str, *, actor: str) -> tuple[str, str]:
        """Exchange a token for this device's secret: returns (employee_id, secret). NotAuthenticated if the
        token is unknown, used or expired; Conflict if the device belongs to someone else or was revoked."""
        with self._db(f"enrolling device {device_id!r}", write=True) as conn:
            return _enrolment.enrol_device(conn, token, device_id, hostname, actor)

    def authenticate_device(self, device_id: str, secret: str) -> DeviceCredential:
        """The device's credential when ``secret`` is right; NotAuthenticated (wrong, unknown) or DeviceRevoked."""
        with self._db("authenticating a device", write=False) as conn:
            return _enrolment.authenticate(conn, device_id, secret)

    def revoke_device(self, device_id: str, *, actor: str, reason: str) -> DeviceCredential:
        """Refuse everything from this device from now on (for good: it can never be enrolled again); audited."""
        _require(actor=actor, reason=reason)
        with self._db(f"revoking device {device_id!r}", write=True) as conn:
            return _enrolment.revoke(conn, device_id, actor, reason)

    def device_credentials(self) -> dict[str, DeviceCredential]:
        """Every device's enrolment state by device id (devices registered without enrolling have none)."""
        with self._db("listing device credentials", write=False) as conn:
            return _enrolment.list_credentials(conn)

    def set_policy(self, text: str, *, actor: str, note: str | None = None) -> PolicyRecord:
        """Store a new policy version (TOML, validated; its version must be higher than the current one)."""
        with self._db("storing a policy", write=True) as conn:
            return _consent.set_policy(conn, text, actor, note)

    def current_policy(self) -> PolicyRecord:
        """The highest policy version, or version 0 ("nothing may be recorded") when none was set."""
        with self._db("reading the policy", write=False) as conn:
            return _consent.current_policy(conn)

    def record_consent(self, employee: str, action: str, *, policy_version: int | None, method: str,
                       actor: str, evidence: str | None = None) -> ConsentRecord:
        """Append a consent act: ``give`` (for the current policy version) or ``withdraw``; ``actor`` is kept
        as who entered it. Method ``paper`` (given elsewhere, entered by an admin) needs ``evidence``."""
        with self._db(f"recording consent of {employee!r}", write=True) as conn:
            return _consent.record_consent(conn, employee, action, policy_version, method, actor, evidence)

    def consent_history(self, employee: str) -> list[ConsentRecord]:
        with self._db("reading consent history", write=False) as conn:
            return _consent.consent_history(conn, _employees.get_employee(conn, employee).employee_id)

    def device_status(self, device_id: str) -> DeviceStatus:
        """May this device record now? (What the agent polls; no writes.)"""
        with self._db("reading device status", write=False) as conn:
            return _consent.device_status(conn, device_id)

    def device_statuses(self, device_ids: list[str]) -> dict[str, DeviceStatus]:
        """``device_status`` of many devices at once (a few queries per 500), by device id."""
        with self._db("reading device statuses", write=False) as conn:
            return _consent.device_statuses(conn, device_ids)

    # -- events --------------------------------------------------------------------------------

    def write_batch(self, batch: Batch) -> WriteResult:
        """Store a validated batch once; see the module docstring for what returning means."""
        self._check_open()
        self._check_stamps(batch)
        stripe = self._stripes[zlib.crc32(batch.batch_id.encode()) % _LOCK_STRIPES]
        try:
            with stripe:
                with self._engine.connect() as conn:
                    existing = lookup_batch(conn, batch.batch_id)
                    if existing is None:
                        check_sessions_owned(conn, batch.device_id,
                                             pc.unique(batch.events.column("session_id")).to_pylist())
                        data_key = _consent.check_recording(conn, batch.device_id, batch.events.column("t_wall_ns"))
                if existing is not None:
                    return _repeat(batch, existing)
                return self._write_new(batch, _employees.unwrap_key(self._wrapper, data_key), data_key.key_id)
        except SQLAlchemyError as exc:
            raise StoreError(f"control database error while storing batch {batch.batch_id!r}: {exc}; "
                             f"nothing was acknowledged, retry the batch") from exc

    def check_batch(self, batch: Batch) -> WriteResult | None:
        """What ``write_batch`` would answer, without writing (read-only): a fleet collector's answer before it
        publishes the batch (``deskcorder.fleet``).

        Returns a duplicate ``WriteResult`` when the batch is already stored, None
        when it may be stored; raises ``ClockAhead`` (422), ``NotPermitted`` (403),
        ``BatchConflict`` (409) or ``StoreError`` (503) exactly as ``write_batch`` would.
        """
        self._check_open()
        self._check_stamps(batch)  # the same clock check as write_batch's, against this collector's clock
        try:
            with self._engine.connect() as conn:
                existing = lookup_batch(conn, batch.batch_id)
                if existing is not None:
                    return _repeat(batch, existing)
                check_sessions_owned(conn, batch.device_id, pc.unique(batch.events.column("session_id")).to_pylist())
                _consent.check_recording(conn, batch.device_id, batch.events.column("t_wall_ns"))
        except SQLAlchemyError as exc:
            raise StoreError(f"control database error while checking batch {batch.batch_id!r}: {exc}; "
                             f"nothing was acknowledged, retry the batch") from exc
        return None

    def take_rate_token(self, device_id: str, *, rate_per_s: float, burst: int, now: float) -> TokenDecision:
        """Take one token from the device's bucket in the control database, shared by every collector of a fleet
        (``now``: epoch seconds); see ``_db/_rate_limits.py``. StoreError when the database fails."""
        self._check_open()
        return take_token(self._engine, device_id, rate_per_s=rate_per_s, burst=burst, now=now)

    @staticmethod
    def device_ref(device_id: str) -> str:
        """A device as the audit log names it (``target`` of ``audit``): a hash, since device ids are often
        hostnames."""
        return _audit.device_ref(device_id)

    def _check_stamps(self, batch: Batch) -> None:
        """ClockAhead for an event stamped too far ahead of this store's clock: before anything else is looked at,
        by ``write_batch`` and ``check_batch`` alike (see _events/_clock.py)."""
        if self.max_clock_skew_s is not None:
            check_not_ahead(batch.events.column("t_wall_ns"), self._clock(), self.max_clock_skew_s)

    def _write_new(self, batch: Batch, key: bytes, key_id: str) -> WriteResult:
        parts = []
        for date, events in split_by_date(batch.events):
            rel = relative_path(batch, date)
            try:
                self.files.put(rel, seal(parquet_bytes(events), key, key_id, rel))
            except OSError as exc:
                raise StoreError(f"cannot write {self.files.describe(rel)}: {exc}") from exc
            parts.append(FilePart(rel, events))
        received_at = dt.datetime.now(dt.timezone.utc)
        try:
            with self._engine.begin() as conn:
                commit_batch(conn, batch_id=batch.batch_id, device_id=batch.device_id,
                             content_hash=batch.content_hash, events=batch.events, parts=parts,
                             received_at=received_at, key_id=key_id)
                record_activity(conn, batch.batch_id, parts)  # the admin's activity counts, in the same commit
        except (NotPermitted, KeyReplaced):
            # Erased, or their key replaced by a deletion, while we wrote: the files are under a destroyed key.
            self.files.delete([p.path for p in parts])
            raise
        except IntegrityError:
            # Another process registered this batch id between our lookup and our insert.
            with self._engine.connect() as conn:
                existing = lookup_batch(conn, batch.batch_id)
            if existing is None:
                raise
            return _repeat(batch, existing)
        return WriteResult(batch.batch_id, batch.events.num_rows, False)

    def read_events(self, *, actor: str, purpose: str, device_id: str | None = None, session_id: str | None = None,
                    employee: str | None = None) -> pa.Table:
        """Stored events (EVENT_SCHEMA columns + device_id), sorted by (session_id, seq); audited.

        ``actor`` (who reads) and ``purpose`` (why) are required and go to the audit
        log with what was read; the events are returned only once that entry is
        committed. Filters combine (``employee`` is a handle). Reads only files
        listed in the manifest, so crash leftovers never show up, and never the
        events of an employee being erased.
        """
        _require(actor=actor, purpose=purpose)
        with self._db("finding events to read", write=False) as conn:
            employee_id = _employees.get_employee(conn, employee).employee_id if employee is not None else None
            selection = select_files(conn, device_id=device_id, session_id=session_id, employee_id=employee_id)
        table = load_events(self.files, self._wrapper, selection)
        ids = selection.employee_ids
        target = _audit.employee_target(ids[0]) if len(ids) == 1 else "events"
        details: dict[str, Any] = {"employee_ids": ids, "n_events": table.num_rows,
                                   "devices": sorted(_audit.device_ref(d) for d in selection.files)}
        if session_id is not None:
            details["session_id"] = session_id
        self.audit(actor, "events.read", target, purpose, details)
        return table

    def sessions(self, *, employee: str | None = None) -> list[SessionInfo]:
        with self._db("listing sessions", write=False) as conn:
            query = select(sessions).order_by(sessions.c.first_t_wall_ns, sessions.c.session_id)
            if employee is not None:
                owned = select(devices.c.device_id).where(
                    devices.c.employee_id == _employees.get_employee(conn, employee).employee_id)
                query = query.where(sessions.c.device_id.in_(owned))
            return [SessionInfo(r.session_id, r.device_id, r.first_t_wall_ns, r.last_t_wall_ns, r.n_events)
                    for r in conn.execute(query)]

    def activity_totals(self) -> ActivityTotals:
        """Events, key presses, clicks and people per application, from the counts kept at ingest
        (_db/_aggregates.py): no event is decrypted, so nothing is audited. Not k-anonymous by itself."""
        with self._db("reading the activity counts", write=False) as conn:
            return activity_totals(conn)

    def devices(self, *, employee: str | None = None) -> list[DeviceInfo]:
        with self._db("listing devices", write=False) as conn:
            employee_id = _employees.get_employee(conn, employee).employee_id if employee is not None else None
            return _employees.list_devices(conn, employee_id)

    # -- audit ---------------------------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str, reason: str,
              details: dict[str, Any] | None = None) -> AuditEntry:
        """Append an entry to the hash-chained audit log (e.g. ``dataset.build`` by the dataset builder).

        Name people only as ``employee:<employee_id>``, never by handle or name.
        """
        with self._db(f"writing the audit entry {action!r}", write=True) as conn:
            return _audit.append(conn, actor=actor, action=action, target=target, reason=reason, details=details)

    def audit_entries(self, *, action: str | None = None, employee: str | None = None,
                      limit: int | None = None) -> list[AuditEntry]:
        """Entries oldest first (with ``limit``: the newest ``limit``); ``employee`` keeps those about them."""
        with self._db("reading the audit log", write=False) as conn:
            employee_id = _employees.get_employee(conn, employee).employee_id if employee is not None else None
            return _audit.entries(conn, action=action, about_employee=employee_id, limit=limit)

    def verify_audit_chain(self) -> int | None:
        """The id of the first missing or altered audit row, or None when the chain is intact."""
        with self._db("verifying the audit log", write=False) as conn:
            return _audit.verify_chain(conn)

    # -- privacy operations ----------------------------------------------------------------------

    def erase_employee(self, handle: str, actor: str, reason: str) -> ErasureReport:
        """Erase an employee and everything recorded of them; safe to re-run after a crash (_lifecycle/_erasure.py)."""
        _require(actor=actor, reason=reason)
        self._check_open()
        report = _erasure.erase_employee(self._engine, self.files, handle, actor, reason)
        with self._db("announcing an erasure", write=True) as conn:  # its devices may record no more
            _status_changes.note(conn, f"employee:{report.employee_id}")
        return report

    def delete_events(self, employee: str, *, session_id: str | None = None, day: dt.date | str | None = None,
                      actor: str, reason: str) -> DeletionReport:
        """Delete one session (``session_id``, one of ``employee``'s) or one UTC ``day`` of their events, with
        erasure's guarantee: their data key is replaced, so no copy of the old files opens (_lifecycle/_selective.py).

        NotFound when they have no such session or nothing that day (another person's session included);
        InvalidInput (field ``session`` or ``day``) when neither or both are given or the day is not a date.
        """
        _require(actor=actor, reason=reason)
        self._check_open()
        return _selective.delete_events(self._engine, self.files, self._wrapper, employee, session_id=session_id,
                                        day=day, actor=actor, reason=reason)

    def apply_retention(self, now: dt.datetime, actor: str, *, dry_run: bool = False) -> list[RetentionDeletion]:
        """Delete whole date partitions older than the current policy's ``retention_days``, and (with a
        ``max_clock_skew_s``) those dated beyond ``now`` + that skew (see _lifecycle/_retention.py)."""
        _require(actor=actor)
        self._check_open()
        if now.tzinfo is None:
            raise InvalidInput("now must be timezone-aware (UTC), e.g. datetime.now(timezone.utc)", field="now")
        return _retention.apply_retention(self._engine, self.files, as_utc(now), actor, dry_run=dry_run,
                                          max_clock_skew_s=self.max_clock_skew_s)

    def export_employee(self, handle: str, out: Path | str, *, actor: str,
                        reason: str = "subject access request") -> Path:
        """Write everything stored about an employee to a readable zip (GDPR Art. 15/20); audited."""
        _require(actor=actor, reason=reason)
        self._check_open()
        return _export.export_employee(self._engine, self.files, self._wrapper, handle, Path(out), actor, reason)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the event store at {self.data_dir} is closed; open a new EventStore")


def _sqlite_file(database_url: str) -> Path | None:
    """The database file of a SQLite url (None for PostgreSQL, and for SQLite in memory)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser().resolve()


def _no_store(data_dir: Path, why: str) -> str:
    return (f"no deskcorder store at {data_dir} ({why}): is --data-dir (or DESKCORDER_DATA_DIR) mistyped? "
            f"To create a new store there: deskcorder init --data-dir {data_dir}")


def _holds_schema(engine: Engine) -> bool:
    return inspect(engine).has_table("alembic_version")


def _holds_data_keys(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(employee_keys.c.employee_id).limit(1)).first() is not None


def _require(**values: str) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{name} is required: say {'who acts' if name == 'actor' else 'why'} "
                               f"(it goes to the audit log)", field=name)


def _repeat(batch: Batch, existing: ManifestEntry) -> WriteResult:
    if existing.content_hash == batch.content_hash:
        return WriteResult(batch.batch_id, 0, True)
    # Stored before the content hash was taken from the Arrow columns (wire.content_hash): the same events
    # re-packed with MessagePack, as collectors hashed them then. Only a repeat with another hash pays for it.
    if existing.content_hash == legacy_content_hash(batch.events):
        return WriteResult(batch.batch_id, 0, True)
    raise BatchConflict(
        f"batch_id {batch.batch_id!r} was already stored with different content (sha256 "
        f"{existing.content_hash[:12]}..., this batch {batch.content_hash[:12]}...); the stored batch is "
        f"kept. Give every new batch a fresh batch_id", field="batch_id")
