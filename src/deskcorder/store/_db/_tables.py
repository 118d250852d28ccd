"""The control-plane tables: people, devices, consent, policies, the audit log, and the event-file manifest.

Event rows never live here (they are in encrypted Parquet files); these tables
hold who may be recorded, under which policy, which files exist, and running
counts for listing. Portable types only, so the same models and migrations run
on SQLite and PostgreSQL; the naming convention gives every constraint a fixed
name on both, which is what lets Alembic compare and alter them later.

Personal data lives in ``employees`` (handle, display name), ``devices``
(hostname) and ``consents``; everything else refers to a person only through
the opaque ``employee_id``, so erasing those rows (and the data key in
``employee_keys``) leaves nothing that names them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    JSON,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from ...events import LOSS_REASONS

__all__ = ["metadata", "employees", "employee_keys", "devices", "sessions", "batches", "file_sessions",
           "consents", "policies", "audit_log", "audit_head", "portal_accounts", "portal_logins",
           "recording_pauses", "device_credentials", "enrolment_tokens", "store_settings", "device_rate_limits", "login_failures",
           "observation_files", "stored_observations", "activity_counts", "activity_parts"]

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

employees = Table(
    "employees", metadata,
    Column("employee_id", String(32), primary_key=True),  # opaque and random: what the audit log names
    Column("handle", String(128), nullable=False, unique=True),  # the login: personal data
    Column("display_name", String(256), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Set by the first step of an erasure; from then on nothing is written or read for them.
    Column("erasure_started_at", DateTime(timezone=True), nullable=True),
)

# One data key per employee, only ever stored wrapped by the master key. Its own small
# table so that erasure destroys it with one DELETE (and on PostgreSQL a cheap VACUUM FULL).
employee_keys = Table(
    "employee_keys", metadata,
    Column("employee_id", String(32), ForeignKey("employees.employee_id"), primary_key=True),
    Column("key_id", String(32), nullable=False),  # written in each file's header
    Column("wrapped_key", LargeBinary, nullable=False),  # RFC 3394 AES key wrap, 40 bytes
    Column("master_key_id", String(64), nullable=False),  # which master key wrapped it
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Id lengths match the wire format (8-128 chars) and the event model (session_id <= 64).
devices = Table(
    "devices", metadata,
    Column("device_id", String(128), primary_key=True),
    Column("employee_id", String(32), ForeignKey("employees.employee_id"), nullable=False, index=True),
    Column("hostname", String(255), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=True),  # server clock, first batch received
    Column("last_seen", DateTime(timezone=True), nullable=True),
    Column("n_batches", BigInteger, nullable=False),
    Column("n_events", BigInteger, nullable=False),  # events stored now (retention subtracts)
    # Events its agent lost, by deskcorder.events.LOSS_REASONS: the GAP events stored, added up (_losses.py).
    *(Column(f"lost_{reason}", BigInteger, nullable=False, server_default="0") for reason in LOSS_REASONS),
)

sessions = Table(
    "sessions", metadata,
    Column("session_id", String(64), primary_key=True),
    Column("device_id", String(128), ForeignKey("devices.device_id"), nullable=False, index=True),
    Column("first_t_wall_ns", BigInteger, nullable=False),
    Column("last_t_wall_ns", BigInteger, nullable=False),
    Column("n_events", BigInteger, nullable=False),
)

# The manifest: a Parquet file is part of the store only once a row here lists it.
# Retention empties ``files`` but keeps the row, so a late retry of an old batch is
# still answered as a duplicate instead of being stored again.
batches = Table(
    "batches", metadata,
    Column("batch_id", String(128), primary_key=True),
    Column("device_id", String(128), ForeignKey("devices.device_id"), nullable=False, index=True),
    Column("content_hash", String(64), nullable=False),
    Column("n_events", BigInteger, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("files", JSON, nullable=False),  # paths relative to the data dir, '/'-separated
)

# Per file and session: what retention needs to fix session counts without decrypting anything.
file_sessions = Table(
    "file_sessions", metadata,
    Column("path", String(512), primary_key=True),
    Column("session_id", String(64), primary_key=True, index=True),
    Column("batch_id", String(128), ForeignKey("batches.batch_id"), nullable=False, index=True),
    Column("n_events", BigInteger, nullable=False),
    Column("first_t_wall_ns", BigInteger, nullable=False),
    Column("last_t_wall_ns", BigInteger, nullable=False),
)

# Append-only: no code path updates or deletes a row, except erasure of that employee.
consents = Table(
    "consents", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("employee_id", String(32), ForeignKey("employees.employee_id"), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("scope_text", Text, nullable=False),  # what they were shown, verbatim
    Column("method", String(16), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(256), nullable=True),  # who entered it (NULL before migration 0006)
    Column("evidence", Text, nullable=True),  # method 'paper': what shows the person consented
    CheckConstraint("action IN ('give', 'withdraw')", name="action"),
    CheckConstraint("method IN ('cli', 'portal', 'api', 'paper')", name="method"),
)

policies = Table(
    "policies", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("body", Text, nullable=False),  # the TOML, verbatim
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("note", Text, nullable=True),
)

# Hash-chained (see _people/_audit.py); ids are contiguous from 1, assigned under the head row's lock.
audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(64), nullable=False, index=True),
    Column("target", String(256), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("details", Text, nullable=False),  # canonical JSON text: hashed exactly as stored
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row (id 1): the chain's end. Appenders lock it first, which serialises them on both
# databases; verification compares it with the last row, so a cut-off tail shows too.
audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_id", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
)


# The transparency portal (``collect/_portal``). Rows of an employee go with them on erasure
# through ON DELETE CASCADE (an employee's login is their handle: personal data).
portal_accounts = Table(
    "portal_accounts", metadata,
    Column("login", String(128), primary_key=True),  # an employee's handle, or an admin's login
    Column("role", String(16), nullable=False),
    Column("employee_id", String(32), ForeignKey("employees.employee_id", ondelete="CASCADE"), nullable=True,
           unique=True),
    Column("password_hash", String(256), nullable=False),  # argon2id, PHC string
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("password_set_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("(role = 'admin' AND employee_id IS NULL) OR (role = 'employee' AND employee_id IS NOT NULL)",
                    name="role"),
)

# Server-side portal logins ("logins", since a session in deskcorder is a capture session).
# Only a hash of the token is stored, so a copy of the database lets nobody log in.
portal_logins = Table(
    "portal_logins", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_login", String(128), ForeignKey("portal_accounts.login", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# An employee's "pause recording" from the portal: independent of consent, and read by
# device_status (what the agent polls). One row while paused; resuming deletes it.
recording_pauses = Table(
    "recording_pauses", metadata,
    Column("employee_id", String(32), ForeignKey("employees.employee_id", ondelete="CASCADE"), primary_key=True),
    Column("paused_at", DateTime(timezone=True), nullable=False),
)


# Device enrolment (``_people/_enrolment.py``): an admin's one-time token, exchanged by the agent for its
# device's own secret. Only SHA-256 hashes are stored, so a copy of the database lets nobody
# enrol a device or upload as one. Revoking keeps the row (revoked_at), so a revoked device id
# can never be enrolled again by accident.
device_credentials = Table(
    "device_credentials", metadata,
    Column("device_id", String(128), ForeignKey("devices.device_id", ondelete="CASCADE"), primary_key=True),
    Column("employee_id", String(32), ForeignKey("employees.employee_id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

enrolment_tokens = Table(
    "enrolment_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("employee_id", String(32), ForeignKey("employees.employee_id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("used_by_device", String(128), nullable=True),
    Column("created_by", String(256), nullable=False),
)


# Settings of the store as a whole, written once and read by every process that opens it.
# ``events_url``: where the event files live (absent: ``<data_dir>/events``), so that a
# command started without --events-url can never look for (or "erase") files in the wrong place.
store_settings = Table(
    "store_settings", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
)

# Fleet collectors' shared per-device token buckets (``collect/_device_auth.py``): one row per
# device, so a device is limited across all collectors, not per collector behind a balancer.
device_rate_limits = Table(
    "device_rate_limits", metadata,
    Column("device_id", String(128), ForeignKey("devices.device_id", ondelete="CASCADE"), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", Float, nullable=False),  # collector wall clock, seconds since the epoch
)

# Failed portal logins per login name (``_people/_login_throttle.py``); names need not be accounts, and
# are kept only as a SHA-256, so a mistyped name or an erased person's handle is not stored.
login_failures = Table(
    "login_failures", metadata,
    Column("login_hash", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", DateTime(timezone=True), nullable=False, index=True),
    Column("locked_until", DateTime(timezone=True), nullable=True),
)


# Observations (``store/_observations``, migration 0008): the manifest of their sealed files, one per
# upload, UTC day and session, and one row per observation ever stored (idempotency; ``path`` NULL once
# retention or a deletion removed it, so a retry stays a duplicate). Erasure deletes both with the device.
observation_files = Table(
    "observation_files", metadata,
    Column("path", String(512), primary_key=True),
    Column("device_id", String(128), ForeignKey("devices.device_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("session_id", String(64), nullable=False, index=True),
    Column("day", String(10), nullable=False, index=True),  # YYYY-MM-DD, UTC: the file's date partition
    Column("key_id", String(32), nullable=False),  # the data key it is sealed under
    Column("n_observations", BigInteger, nullable=False),
    Column("n_frames", BigInteger, nullable=False),
    Column("n_elements", BigInteger, nullable=False),
    Column("frame_bytes", BigInteger, nullable=False),  # encoded image bytes, before Parquet and sealing
    Column("stored_bytes", BigInteger, nullable=False),  # the sealed file's size
    Column("first_t_wall_ns", BigInteger, nullable=False),
    Column("last_t_wall_ns", BigInteger, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

stored_observations = Table(
    "stored_observations", metadata,
    Column("session_id", String(64), primary_key=True),
    Column("action_seq", BigInteger, primary_key=True),
    Column("device_id", String(128), ForeignKey("devices.device_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("content_hash", String(64), nullable=False),
    Column("path", String(512), nullable=True, index=True),
)


# Activity aggregates kept at ingest, in the manifest's transaction (``_aggregates.py``): what the admin's
# activity page reads instead of decrypting every event. Rows go with their batch (ON DELETE CASCADE) and
# with retention and selective deletion; counts only, no text, no titles.
activity_counts = Table(
    "activity_counts", metadata,
    Column("batch_id", String(128), ForeignKey("batches.batch_id", ondelete="CASCADE"), primary_key=True),
    Column("session_id", String(64), primary_key=True, index=True),
    Column("hour", BigInteger, primary_key=True, index=True),  # UTC hours since the epoch (t_wall_ns)
    Column("app", String(256), primary_key=True),  # the application in front (app_class, else app_process)
    Column("kind", String(16), primary_key=True),
    # True: events before the part's first focus, counted for the app in front at the end of the session's
    # previous part (resolved again when that changes: a late batch, a deletion).
    Column("lead", Boolean, primary_key=True),
    Column("n_events", BigInteger, nullable=False),
    # The batch's device's employee, kept here so that the page's one query joins nothing (on the ~18 k rows
    # of 500 k events: 9 ms instead of 40-60 through batches and devices); a device never changes hands,
    # and the row goes with its batch on erasure.
    Column("employee_id", String(32), nullable=False),
)

# One row per (batch, session, UTC day): a date file's share of a session, in seq order by first_seq.
activity_parts = Table(
    "activity_parts", metadata,
    Column("batch_id", String(128), ForeignKey("batches.batch_id", ondelete="CASCADE"), primary_key=True),
    Column("session_id", String(64), primary_key=True, index=True),
    Column("day", Integer, primary_key=True, index=True),  # UTC days since the epoch
    Column("first_seq", BigInteger, nullable=False),
    Column("lead_app", String(256), nullable=False),  # what its lead rows count for
    Column("last_focus_app", String(256), nullable=True),  # its own last focus (None: it has none)
)
