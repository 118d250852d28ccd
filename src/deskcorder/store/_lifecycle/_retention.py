"""Retention: delete whole UTC-date partitions once they are older than the policy's ``retention_days``.

A partition (``events/date=D/``) holds events from D 00:00 to D+1 00:00 UTC,
so it goes once D+1 00:00 is at least ``retention_days`` before ``now`` (the
collector's clock, or ``deskcorder retention apply --now``): no event is
deleted early, and none is kept longer than the policy says plus the time
until the next run (the collector runs it hourly).

Per partition, one transaction removes its files from the manifest (the
batch rows stay, with fewer files, so a late retry of an old batch is still
answered as a duplicate), recomputes the affected sessions' counts and time
range from ``file_sessions``, and writes a ``retention.delete`` audit entry;
then the files are deleted. A crash in between leaves files no reader sees,
which the next run deletes. Files in the folder that the manifest does not
list are deleted too once they are older than ``_ORPHAN_AGE_S`` (younger ones
may belong to a batch being written right now). A partition with nothing to
delete is skipped without an audit entry, so hourly runs do not log the same
empty deletion over and over.

Partitions dated in the future go too: one that begins more than the store's
clock skew (``_events/_clock.py``; a store opened without one skips this) after ``now`` holds only events stamped by a wrong or
hostile clock, which no consent can cover (a withdrawal never reaches them,
and "older than retention_days" never would). The collector refuses such
batches now; this removes what an older version stored. Every date folder
there is, from 1970 to 2262, is looked at, and every date in the manifest.

Observation files (``observations/date=D``, ``_observations/_lifecycle.py``) go by the same dates,
with a ``retention.delete`` entry per partition of their own (``events`` 0 in what is returned).

No policy (version 0) means nothing was ever allowed to be recorded, so nothing is deleted.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict

from sqlalchemy import Connection, Engine, delete, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from .._people import _audit
from .._people._consent import current_policy
from .._errors import StoreError
from .._events._backends import EventFiles
from .._events._layout import EVENTS_DIR
from .._observations import _lifecycle as _observations
from .._records import RetentionDeletion
from .._db._aggregates import forget_activity
from .._db._tables import batches, devices, file_sessions, sessions

__all__ = ["apply_retention"]

_ORPHAN_AGE_S = 3600
_DATE_IN_PATH = func.substr(file_sessions.c.path, len(f"{EVENTS_DIR}/date=") + 1, 10)


def apply_retention(engine: Engine, files: EventFiles, now: dt.datetime, actor: str, *,
                    dry_run: bool = False, max_clock_skew_s: float | None = None) -> list[RetentionDeletion]:
    try:
        return _apply(engine, files, now, actor, dry_run, max_clock_skew_s)
    except SQLAlchemyError as exc:
        raise StoreError(f"control database error while applying retention: {exc}; what was deleted is in the "
                         f"audit log (retention.delete), run it again to finish") from exc
    except OSError as exc:
        raise StoreError(f"cannot delete expired event files: {exc}; fix the cause and run "
                         f"`deskcorder retention apply` again to finish") from exc


def _apply(engine: Engine, files: EventFiles, now: dt.datetime, actor: str, dry_run: bool,
           max_clock_skew_s: float | None) -> list[RetentionDeletion]:
    with engine.connect() as conn:
        policy = current_policy(conn)
        if policy.policy is None:
            return []
        days = policy.policy.retention_days
        limit = (now - dt.timedelta(days=days)).date()
        # A partition D begins at D 00:00, so it is wholly ahead of the clock when D is after this date.
        ahead = dt.date.max if max_clock_skew_s is None else (now + dt.timedelta(seconds=max_clock_skew_s)).date()
        in_manifest = {dt.date.fromisoformat(d) for d in conn.execute(
            select(_DATE_IN_PATH).distinct().where(or_(_DATE_IN_PATH < limit.isoformat(),
                                                       _DATE_IN_PATH > ahead.isoformat()))).scalars()}
    expired = sorted(in_manifest | {d for d in files.partition_dates() if d < limit or d > ahead})
    out = []
    for date in expired:
        reason = (f"older than retention_days={days} of policy version {policy.version}" if date < limit else
                  f"dated after {ahead.isoformat()}: stamped more than {max_clock_skew_s or 0:.0f} s ahead of the "
                  f"collector's clock, outside any consent")
        folder = f"{EVENTS_DIR}/date={date.isoformat()}"
        if dry_run:
            with engine.connect() as conn:
                paths, events, touched, _ = _partition(conn, date)
            n_files = len(paths) + len(_orphans(files, folder, paths))
            if n_files:
                out.append(RetentionDeletion(date, n_files, events, sorted(touched)))
            continue
        with engine.begin() as conn:
            _audit.lock_chain(conn)
            paths, events, touched, employee_ids = _partition(conn, date)
            orphans = _orphans(files, folder, paths)
            if not paths and not orphans:
                # Nothing to delete (an empty folder, or only files young enough to be mid-write):
                # no audit entry, or every hourly run would log the same empty deletion again.
                files.prune(folder)
                continue
            _unlist(conn, date, paths)
            forget_activity(conn, day=date)  # the admin's activity counts of that day
            _audit.append(conn, actor=actor, action="retention.delete", target=f"partition:date={date.isoformat()}",
                          reason=reason, details={"date": date.isoformat(), "files": len(paths),
                                                  "unlisted_files": len(orphans), "events": events,
                                                  "sessions": len(touched), "employee_ids": employee_ids,
                                                  "retention_days": days, "policy_version": policy.version,
                                                  "as_of": _audit.iso_utc(now),
                                                  **({"ahead_of_clock": True} if date > ahead else {})})
        files.delete(sorted(paths | orphans))
        out.append(RetentionDeletion(date, len(paths) + len(orphans), events, sorted(touched)))
    # Observation partitions (observations/date=D) by the same dates, each with its own audit entry.
    expired_observations = _observations.expire_partitions(
        engine, files, before=limit, after=ahead, actor=actor, dry_run=dry_run,
        reason_old=f"older than retention_days={days} of policy version {policy.version}",
        reason_ahead=f"dated after {ahead.isoformat()}: stamped ahead of the collector's clock, outside any consent",
        details={"retention_days": days, "policy_version": policy.version, "as_of": _audit.iso_utc(now)})
    out += [RetentionDeletion(date, n_files, 0, sessions, n_obs) for date, n_files, n_obs, sessions in expired_observations]
    return out


def _partition(conn: Connection, date: dt.date) -> tuple[set[str], int, set[str], list[str]]:
    """The partition's manifest files, event count, sessions and employees."""
    rows = conn.execute(select(file_sessions.c.path, file_sessions.c.session_id, file_sessions.c.n_events,
                               devices.c.employee_id)
                        .join(batches, batches.c.batch_id == file_sessions.c.batch_id)
                        .join(devices, devices.c.device_id == batches.c.device_id)
                        .where(_DATE_IN_PATH == date.isoformat())).all()
    return ({r.path for r in rows}, sum(r.n_events for r in rows), {r.session_id for r in rows},
            sorted({r.employee_id for r in rows}))


def _orphans(files: EventFiles, folder: str, listed: set[str]) -> set[str]:
    cutoff = time.time() - _ORPHAN_AGE_S
    return {f.key for f in files.list(folder) if f.key not in listed and f.mtime < cutoff}


def _unlist(conn: Connection, date: dt.date, paths: set[str]) -> None:
    """Take the partition's files out of the manifest and fix every count that included them."""
    if not paths:
        return
    rows = conn.execute(select(file_sessions.c.path, file_sessions.c.batch_id, file_sessions.c.session_id,
                               file_sessions.c.n_events, batches.c.device_id, batches.c.files)
                        .join(batches, batches.c.batch_id == file_sessions.c.batch_id)
                        .where(_DATE_IN_PATH == date.isoformat())).all()
    per_batch: dict[str, int] = defaultdict(int)
    per_device: dict[str, int] = defaultdict(int)
    files_of: dict[str, list[str]] = {}
    for r in rows:
        per_batch[r.batch_id] += r.n_events
        per_device[r.device_id] += r.n_events
        files_of[r.batch_id] = [f for f in r.files if f not in paths]
    for batch_id, n in per_batch.items():
        conn.execute(update(batches).where(batches.c.batch_id == batch_id)
                     .values(files=files_of[batch_id], n_events=batches.c.n_events - n))
    for device_id, n in per_device.items():
        conn.execute(update(devices).where(devices.c.device_id == device_id)
                     .values(n_events=devices.c.n_events - n))
    conn.execute(delete(file_sessions).where(_DATE_IN_PATH == date.isoformat()))
    for session_id in sorted({r.session_id for r in rows}):
        left = conn.execute(select(func.sum(file_sessions.c.n_events), func.min(file_sessions.c.first_t_wall_ns),
                                   func.max(file_sessions.c.last_t_wall_ns))
                            .where(file_sessions.c.session_id == session_id)).one()
        if not left[0]:
            conn.execute(delete(sessions).where(sessions.c.session_id == session_id))
        else:
            conn.execute(update(sessions).where(sessions.c.session_id == session_id)
                         .values(n_events=left[0], first_t_wall_ns=left[1], last_t_wall_ns=left[2]))
