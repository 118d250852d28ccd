"""Subject access: everything stored about one employee, as a zip a person can read (GDPR Art. 15 and 20).

The archive holds plain JSON, JSON Lines, CSV, Parquet and TOML files and a
README.txt that explains each one. Events are decrypted and written three
ways: one JSON object per line with a readable UTC time (to read), CSV (for a
spreadsheet) and Parquet (for a program; the same columns as the store).
The export is written to the audit log *before* the archive is finished, so
the archive's audit.jsonl includes its own entry; an export that then fails
to write still shows in the log, which errs on the side of telling.
The file is created 0600, and replaced atomically: it is personal data, and a
half-written archive must never look like a complete one.

What is left out on purpose: the portal password hash and the hashes of
device secrets and enrolment tokens (stored so nobody can log in or upload
with a copy of the database; the README says they exist).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from ... import __version__
from .._people import _audit
from .._people._consent import consent_history, current_policy
from .._db._engine import as_utc
from .._errors import Conflict, NotFound, StoreError
from .._events._backends import EventFiles
from .._events._keys import KeyWrapper
from .._people._employees import get_employee, list_devices
from .._events._reader import load_events, select_files
from .._observations._lifecycle import export_observations
from .._observations._read import load_observations, select_observation_files
from .._db._tables import device_credentials, policies, portal_accounts, recording_pauses, sessions

__all__ = ["export_employee", "ARCHIVE_FILES"]

# Every file an archive holds (policies/vN.toml besides); the README describes each.
ARCHIVE_FILES = ("README.txt", "employee.json", "devices.json", "consents.json", "sessions.json", "events.jsonl",
                 "events.csv", "events.parquet", "observations.jsonl", "policy.toml", "audit.jsonl")

_README = """\
Your data recorded by deskcorder
================================

This archive holds everything deskcorder stores about you, as of {exported_at}.
You received it because of a subject access request (GDPR Article 15); the
files are in open formats so you can take them elsewhere (Article 20).

employee.json    Who you are in deskcorder: your login (handle), display name,
                 the random id (employee_id) that stands for you everywhere
                 else, when you were added, your portal account (login, role,
                 when the password was set) and whether you paused recording.
devices.json     The computers registered to you: device id, hostname, when it
                 was registered, first and last upload, how many events are
                 stored, and when it was enrolled (or revoked).
consents.json    Every time you gave or withdrew consent, oldest first: the
                 policy version, the scope text you were shown, how (cli,
                 portal, api) and when. Nothing is ever changed or removed
                 from this history except by erasing you.
sessions.json    Your recording sessions: a session is one run of the capture
                 agent. Times are nanoseconds since 1970-01-01 UTC, and the
                 same in readable UTC.
events.jsonl     Every stored event, one JSON object per line, oldest session
                 first: "time" (UTC), "kind" (key_down, key_up, move,
                 button_down, button_up, scroll, focus, pause, resume) and the
                 fields that apply (key, char, button, x, y, dx, dy, app_class,
                 app_process, window_title, reason). {n_events} events.
events.csv       The same events as a table, one row each, for a spreadsheet.
events.parquet   The same events in Apache Parquet, with the columns exactly
                 as deskcorder stores them (for pandas, polars, DuckDB, ...).
observations.jsonl  What was in front of you at your actions, when the policy
                 recorded it (observe = elements or frames): one JSON object
                 per action with the screen and window geometry, the control
                 clicked (kind, label, box) and, for a frame, its file in
                 frames/ (a picture of the focused window only). {n_observations}
                 observations, {n_frames} frames.
frames/          Those pictures, as stored (WebP or PNG).
policy.toml      The recording policy in force now: which applications may be
                 recorded, when, and how long data is kept (retention_days).
policies/        Each policy version you consented to, as you were shown it.
audit.jsonl      Every audit log entry about you (reads of your events,
                 exports, consent changes, device registrations, retention
                 deletions), oldest first. Entries name you only by employee_id.

Also stored, and not included because they are one-way hashes that only
serve to check a login: your portal password (argon2id), your devices'
upload secrets and enrolment tokens (SHA-256).

Events older than the policy's retention period have already been deleted and
are not here. On disk, your events are encrypted with a key of your own; to
have everything erased (that key first), ask your administrator to run
`deskcorder erase`; to stop recording, withdraw your consent.

deskcorder {version}
"""


def export_employee(engine: Engine, event_files: EventFiles, wrapper: KeyWrapper, handle: str, out: Path, actor: str,
                    reason: str) -> Path:
    try:
        return _export(engine, event_files, wrapper, handle, out.expanduser(), actor, reason)
    except SQLAlchemyError as exc:
        raise StoreError(f"control database error while exporting {handle!r}: {exc}; nothing was written, "
                         f"retry") from exc


def _export(engine: Engine, event_files: EventFiles, wrapper: KeyWrapper, handle: str, out: Path, actor: str,
            reason: str) -> Path:
    if not out.parent.is_dir():
        raise StoreError(f"cannot write the export {out}: the folder {out.parent} does not exist; create it or "
                         f"pass another --out")
    with engine.connect() as conn:
        try:
            employee = get_employee(conn, handle)
        except NotFound as exc:
            raise NotFound(f"no employee {handle!r}, so there is nothing to export: the handle is misspelt, was "
                           f"never added, or was erased (see: deskcorder employee list)") from exc
        if employee.erasure_started_at is not None:
            raise Conflict(f"employee {handle!r} is being erased; there is nothing to export. Finish the erasure "
                           f"with: deskcorder erase --employee {handle}")
        files = _records(conn, employee)
        history = consent_history(conn, employee.employee_id)
        policy = current_policy(conn)
        agreed = sorted({c.policy_version for c in history if c.action == "give"})
        agreed_texts = {r.version: r.body for r in conn.execute(
            select(policies.c.version, policies.c.body).where(policies.c.version.in_(agreed)))} if agreed else {}
        selection = select_files(conn, employee_id=employee.employee_id)
        observed = select_observation_files(conn, employee_id=employee.employee_id)
    # Decrypt before auditing: a wrong master key fails here, and nothing claims an export happened.
    events = load_events(event_files, wrapper, selection)
    observations = load_observations(event_files, wrapper, observed)
    target = _audit.employee_target(employee.employee_id)
    with engine.begin() as conn:
        _audit.append(conn, actor=actor, action="employee.export", target=target, reason=reason,
                      details={"n_events": events.num_rows, "n_observations": len(observations),
                               "n_frames": sum(o.frame is not None for o in observations),
                               "devices": len(files["devices.json"]),
                               "sessions": len(files["sessions.json"])})
    with engine.connect() as conn:
        audit = _audit.entries(conn, about_employee=employee.employee_id)

    files["consents.json"] = [{"id": c.id, **c.as_json()} for c in history]
    tmp = out.with_name(f".{out.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
                _write_archive(zf, files, events, policy.text, agreed_texts, audit, observations)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        raise StoreError(f"cannot write the export {out}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _records(conn: Connection, employee: Any) -> dict[str, Any]:
    """The employee's rows, as the JSON files of the archive (without hashes of secrets)."""
    devices = list_devices(conn, employee.employee_id)
    device_ids = [d.device_id for d in devices]
    enrolled = {r.device_id: r for r in conn.execute(
        select(device_credentials.c.device_id, device_credentials.c.created_at, device_credentials.c.revoked_at)
        .where(device_credentials.c.employee_id == employee.employee_id))}
    account = conn.execute(select(portal_accounts.c.login, portal_accounts.c.role, portal_accounts.c.created_at,
                                  portal_accounts.c.password_set_at)
                           .where(portal_accounts.c.employee_id == employee.employee_id)).first()
    paused = conn.execute(select(recording_pauses.c.paused_at)
                          .where(recording_pauses.c.employee_id == employee.employee_id)).scalar()
    session_rows = conn.execute(select(sessions).where(sessions.c.device_id.in_(device_ids))
                                .order_by(sessions.c.first_t_wall_ns)).all() if device_ids else []
    return {
        "employee.json": {
            "employee_id": employee.employee_id, "handle": employee.handle, "display_name": employee.display_name,
            "created_at": _iso(employee.created_at),
            "portal_account": None if account is None else {
                "login": account.login, "role": account.role, "created_at": _iso(account.created_at),
                "password_set_at": _iso(account.password_set_at)},
            "recording_paused_since": _iso(paused),
        },
        "devices.json": [{**dataclasses.asdict(d), **{k: _iso(getattr(d, k)) for k in
                                                      ("first_seen", "last_seen", "registered_at")},
                          "enrolled_at": _iso(enrolled[d.device_id].created_at) if d.device_id in enrolled else None,
                          "revoked_at": _iso(enrolled[d.device_id].revoked_at) if d.device_id in enrolled else None}
                         for d in devices],
        "sessions.json": [{"session_id": r.session_id, "device_id": r.device_id,
                           "first_t_wall_ns": r.first_t_wall_ns, "last_t_wall_ns": r.last_t_wall_ns,
                           "first_time": _ns_iso(r.first_t_wall_ns), "last_time": _ns_iso(r.last_t_wall_ns),
                           "n_events": r.n_events} for r in session_rows],
    }


def _write_archive(zf: zipfile.ZipFile, files: dict[str, Any], events: pa.Table, policy_text: str,
                   agreed_texts: dict[int, str], audit: list[_audit.AuditEntry], observations: list[Any]) -> None:
    zf.writestr("README.txt", _README.format(exported_at=dt.datetime.now(dt.timezone.utc).isoformat(),
                                             n_events=events.num_rows, version=__version__,
                                             n_observations=len(observations),
                                             n_frames=sum(o.frame is not None for o in observations)))
    export_observations(zf, observations)
    for name, value in files.items():
        zf.writestr(name, json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    with zf.open("events.jsonl", "w") as fh:
        for batch in events.to_batches(max_chunksize=10_000):
            for row in batch.to_pylist():
                line = {"time": _ns_iso(row["t_wall_ns"]), **{k: v for k, v in row.items() if v is not None}}
                fh.write((json.dumps(line, ensure_ascii=False) + "\n").encode())
    times = pa.array([_ns_iso(t) for t in events.column("t_wall_ns").to_pylist()], pa.string())
    readable = events.add_column(0, "time", times)
    with zf.open("events.csv", "w") as fh:
        sink = io.BytesIO()
        pa_csv.write_csv(readable, sink)
        fh.write(sink.getvalue())
    with zf.open("events.parquet", "w") as fh:
        sink = io.BytesIO()
        pq.write_table(events, sink, compression="zstd")
        fh.write(sink.getvalue())
    zf.writestr("policy.toml", policy_text or "# No recording policy has been set.\n")
    for version, text in agreed_texts.items():
        zf.writestr(f"policies/v{version}.toml", text)
    zf.writestr("audit.jsonl", "".join(json.dumps(e.as_json(), ensure_ascii=False) + "\n" for e in audit))


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def _ns_iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.timezone.utc).replace(
        microsecond=(ns // 1000) % 1_000_000).isoformat()
