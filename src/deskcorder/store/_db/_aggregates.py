"""Activity aggregates: events counted per (batch, session, UTC hour, application, kind), kept at ingest.

The admin's activity page (``collect/_portal``) used to decrypt every stored
event on each view (12 s on 500 k events) to count them per application. It
now reads these counts, which ``record_activity`` adds in the transaction that
commits the batch's manifest row (``EventStore._write_new``, so the fleet's
writers too): a batch is counted exactly when it is stored, once however often
it was sent, and nothing of a refused batch is counted.

What an event counts for, the same rule as the old page's: the application in
front when it happened, i.e. the session's latest event naming one
(``app_class``, else ``app_process``), in seq order; ``(before any window)``
before the session's first. Within one date file of a batch (a *part*:
``activity_parts``, one row per batch, session and UTC day) that is known from
the part itself, except for its *lead*: the events before its first focus,
which carry the application in front at the end of the session's previous
part. Lead rows are marked (``lead``) and counted for the app resolved then; a
part stored before one it follows (a late retry, a fleet writer's redelivery)
or a deletion of the part before it resolves the session's parts again
(``_resolve``), so the counts always equal a recount of the stored events
(``tests/test_admin_aggregates.py`` checks this on SQLite and PostgreSQL). On
PostgreSQL two parts of one session never resolve side by side: the session
row's upsert in ``commit_batch`` locks it to the commit.

Removal follows the batches: erasure deletes the batch rows and these go with
them (ON DELETE CASCADE); retention (``forget_activity(day=...)``) and
selective deletion (``session_id`` or ``day`` of some devices) delete theirs
in their own transaction. Stores from before migration 0009 get their counts
from ``backfill_activity``, run once when the store is opened (the migration
marks it pending in ``store_settings``); it decrypts each stored batch once.

Counts hold no text and no titles: an application's name and numbers. Who
may see which of them (groups of at least k people) is the portal's rule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import defaultdict
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, bindparam, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .._errors import StoreError
from .._events._backends import EventFiles
from .._events._keys import KeyWrapper
from .._events._reader import read_file
from .._people._employees import DataKey, unwrap_key
from ._manifest import FilePart
from ._tables import (activity_counts, activity_parts, batches, devices, employee_keys, employees, sessions,
                      store_settings)

__all__ = ["BEFORE_ANY_WINDOW", "AppTotals", "ActivityTotals", "record_activity", "forget_activity",
           "activity_totals", "backfill_activity", "BACKFILL_SETTING"]

log = logging.getLogger("deskcorder.store")

BEFORE_ANY_WINDOW = "(before any window)"
BACKFILL_SETTING = "activity_aggregates"  # store_settings: "pending" (migration 0009) until backfilled
_HOUR_NS = 3600 * 1_000_000_000

_PREVIOUS = (select(func.coalesce(activity_parts.c.last_focus_app, activity_parts.c.lead_app))
             .where(activity_parts.c.session_id == bindparam("s"), activity_parts.c.first_seq < bindparam("first"))
             .order_by(activity_parts.c.first_seq.desc(), activity_parts.c.batch_id.desc(),
                       activity_parts.c.day.desc())
             .limit(1))
_EMPLOYEE = (select(devices.c.employee_id).join(batches, batches.c.device_id == devices.c.device_id)
             .where(batches.c.batch_id == bindparam("b")))
_LATER = (select(activity_parts.c.batch_id)
          .where(activity_parts.c.session_id == bindparam("s"), activity_parts.c.first_seq > bindparam("first"))
          .limit(1))


@dataclasses.dataclass(frozen=True)
class AppTotals:
    app: str
    people: int  # distinct employees with events in it
    events: int
    keys: int  # key presses (key_down)
    clicks: int  # button presses (button_down)


@dataclasses.dataclass(frozen=True)
class ActivityTotals:
    apps: list[AppTotals]  # most events first
    people: int  # distinct employees with any event counted


# -- at ingest ------------------------------------------------------------------------------------

def _part_counts(events: pa.Table) -> tuple[list[dict[str, Any]], list[tuple[str, int, str | None]]]:
    """One date file's events -> (counts per session, hour, app, kind: app None for the lead; per session: its
    first seq and its last app named). pyarrow, not polars: a third of the time on batches of ~100 events."""
    sessions = events.column("session_id")
    ids = pc.unique(sessions)
    seq = events.column("seq")
    in_order = len(seq) < 2 or pc.all(pc.greater(seq.slice(1), seq.slice(0, len(seq) - 1))).as_py()
    if len(ids) > 1 or not in_order:  # split_by_date sorted them so; a cheap guard for other callers
        events = events.sort_by([("session_id", "ascending"), ("seq", "ascending")])
        sessions, seq = events.column("session_id"), events.column("seq")
    named = pc.coalesce(events.column("app_class"), events.column("app_process"))
    filled, firsts, start = [], [], 0
    for sid, n in zip(*_runs(sessions, len(ids))):  # each session's events are one run, in seq order
        piece = named.slice(start, n)
        filled.extend(pc.fill_null_forward(piece).chunks)
        valid = piece.drop_null()
        firsts.append((sid, seq[start].as_py(), valid[-1].as_py() if len(valid) else None))
        start += n
    table = pa.table({"session_id": sessions, "hour": pc.divide(events.column("t_wall_ns"), _HOUR_NS),
                      "app": pa.chunked_array(filled, named.type), "kind": events.column("kind")})
    # One thread: a batch is small, and handing it to Acero's thread pool cost more than the grouping.
    counts = table.group_by(["session_id", "hour", "app", "kind"], use_threads=False).aggregate([([], "count_all")])
    return counts.to_pylist(), firsts


def _runs(sessions: pa.ChunkedArray, n_sessions: int) -> tuple[list[str], list[int]]:
    """The sessions of sorted events and how many events each has."""
    if n_sessions == 1:
        return [sessions[0].as_py()], [len(sessions)]
    values = pc.run_end_encode(sessions.combine_chunks())
    ends = values.run_ends.to_pylist()
    return values.values.to_pylist(), [e - b for b, e in zip([0, *ends], ends)]


def record_activity(conn: Connection, batch_id: str, parts: list[FilePart]) -> None:
    """Count a batch's events (in the transaction that commits its manifest row, after ``commit_batch``)."""
    unsettled: set[str] = set()  # sessions with a part stored after this one: resolved again below
    employee_id = conn.execute(_EMPLOYEE, {"b": batch_id}).scalar_one()
    for part in parts:  # each inserted before the next looks for its previous part (a batch across midnight)
        part_rows: list[dict[str, Any]] = []
        count_rows: list[dict[str, Any]] = []
        counts, sessions = _part_counts(part.events)
        day = int(part.events.column("t_wall_ns")[0].as_py() // (24 * _HOUR_NS))
        lead_app: dict[str, str] = {}
        for sid, first, last_focus_app in sessions:
            lead_app[sid] = conn.execute(_PREVIOUS, {"s": sid, "first": first}).scalar() or BEFORE_ANY_WINDOW
            if conn.execute(_LATER, {"s": sid, "first": first}).first() is not None:
                unsettled.add(sid)
            part_rows.append({"batch_id": batch_id, "session_id": sid, "day": day, "first_seq": first,
                              "lead_app": lead_app[sid], "last_focus_app": last_focus_app})
        for c in counts:
            lead = c["app"] is None
            count_rows.append({"batch_id": batch_id, "session_id": c["session_id"], "hour": c["hour"],
                               "app": lead_app[c["session_id"]] if lead else c["app"], "kind": c["kind"],
                               "lead": lead, "n_events": c["count_all"], "employee_id": employee_id})
        if part_rows:
            conn.execute(activity_parts.insert(), part_rows)
            conn.execute(activity_counts.insert(), count_rows)
    _resolve(conn, unsettled)


def _resolve(conn: Connection, session_ids: Iterable[str]) -> None:
    """Walk each session's parts in seq order and recount every lead whose app in front changed."""
    for sid in sorted(set(session_ids)):
        parts = conn.execute(select(activity_parts).where(activity_parts.c.session_id == sid)
                             .order_by(activity_parts.c.first_seq, activity_parts.c.batch_id,
                                       activity_parts.c.day)).all()
        current = BEFORE_ANY_WINDOW
        for p in parts:
            if p.lead_app != current:
                conn.execute(update(activity_parts).where(activity_parts.c.batch_id == p.batch_id,
                                                          activity_parts.c.session_id == sid,
                                                          activity_parts.c.day == p.day).values(lead_app=current))
                conn.execute(update(activity_counts).where(
                    activity_counts.c.batch_id == p.batch_id, activity_counts.c.session_id == sid,
                    activity_counts.c.lead.is_(True), *_in_day(p.day)).values(app=current))
            current = p.last_focus_app or current


def _in_day(day: int) -> tuple[Any, Any]:
    return activity_counts.c.hour >= day * 24, activity_counts.c.hour < (day + 1) * 24


# -- removal --------------------------------------------------------------------------------------

def forget_activity(conn: Connection, *, day: dt.date | None = None, session_id: str | None = None,
                    device_ids: list[str] | None = None) -> None:
    """Remove the counts of events deleted by retention (a ``day``, all devices) or a selective deletion (a
    ``session_id``, or a ``day`` of ``device_ids``), in the deleting transaction; the sessions that keep
    other parts are resolved again. (Erasure needs no call: the rows go with the batch rows.)"""
    parts_where: list[Any] = []
    counts_where: list[Any] = []
    if day is not None:
        n = (day - dt.date(1970, 1, 1)).days
        parts_where.append(activity_parts.c.day == n)
        counts_where.extend(_in_day(n))
    if session_id is not None:
        parts_where.append(activity_parts.c.session_id == session_id)
        counts_where.append(activity_counts.c.session_id == session_id)
    if device_ids is not None:
        owned = select(batches.c.batch_id).where(batches.c.device_id.in_(device_ids))
        parts_where.append(activity_parts.c.batch_id.in_(owned))
        counts_where.append(activity_counts.c.batch_id.in_(owned))
    if not parts_where:
        raise ValueError("forget_activity needs a day or a session_id")
    touched = set(conn.execute(select(activity_parts.c.session_id).distinct().where(*parts_where)).scalars())
    conn.execute(delete(activity_counts).where(*counts_where))
    conn.execute(delete(activity_parts).where(*parts_where))
    _resolve(conn, touched - {session_id})


# -- the admin's view -----------------------------------------------------------------------------

def activity_totals(conn: Connection) -> ActivityTotals:
    """Per application: people, events, key presses, clicks, over every stored event of employees not being
    erased. One grouped query over the counts (no event is read, nothing is audited)."""
    n = activity_counts.c.n_events
    being_erased = select(employees.c.employee_id).where(employees.c.erasure_started_at.is_not(None))
    query = (select(activity_counts.c.app, activity_counts.c.employee_id, func.sum(n).label("events"),
                    func.sum(case((activity_counts.c.kind == "key_down", n), else_=0)).label("keys"),
                    func.sum(case((activity_counts.c.kind == "button_down", n), else_=0)).label("clicks"))
             .where(activity_counts.c.employee_id.not_in(being_erased))
             .group_by(activity_counts.c.app, activity_counts.c.employee_id))
    per_app: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    people: set[str] = set()
    for r in conn.execute(query):
        if not r.events:
            continue
        totals = per_app[r.app]
        totals[0] += 1
        totals[1] += int(r.events)
        totals[2] += int(r.keys)
        totals[3] += int(r.clicks)
        people.add(r.employee_id)
    apps = [AppTotals(app, *t) for app, t in per_app.items()]
    apps.sort(key=lambda a: (-a.events, a.app))
    return ActivityTotals(apps, len(people))


# -- stores from before the aggregates --------------------------------------------------------------

def backfill_activity(engine: Engine, files: EventFiles, wrapper: KeyWrapper) -> int:
    """Count every stored batch that has no counts yet, if migration 0009 left the backfill pending; returns
    the batches counted. One transaction per batch, so an interrupted backfill resumes where it stopped;
    concurrent openers (a fleet's collectors and writers) skip what another one counted."""
    with engine.connect() as conn:
        if conn.execute(select(store_settings.c.value).where(store_settings.c.name == BACKFILL_SETTING)
                        ).scalar() != "pending":
            return 0
        todo = conn.execute(
            select(batches.c.batch_id, batches.c.files, devices.c.employee_id, employee_keys.c.key_id,
                   employee_keys.c.wrapped_key, employee_keys.c.master_key_id)
            .join(devices, devices.c.device_id == batches.c.device_id)
            .join(employee_keys, employee_keys.c.employee_id == devices.c.employee_id)  # erased: nothing to count
            .where(batches.c.n_events > 0,
                   ~select(activity_parts.c.batch_id).where(activity_parts.c.batch_id == batches.c.batch_id)
                   .exists())
            .order_by(batches.c.received_at, batches.c.batch_id)).all()
    if todo:
        log.info("counting the activity of %d stored batches (once, for the admin's activity page)", len(todo))
    keys: dict[str, bytes] = {}
    done = 0
    for row in todo:
        if row.employee_id not in keys:
            keys[row.employee_id] = unwrap_key(wrapper, DataKey(row.employee_id, row.key_id, row.wrapped_key,
                                                                row.master_key_id))
        try:
            parts = [FilePart(path, read_file(files, path, keys[row.employee_id], row.key_id))
                     for path in row.files]
        except StoreError as exc:  # a key replaced meanwhile, a file deleted meanwhile: counted by whoever did it
            log.warning("activity backfill skipped batch %s: %s", row.batch_id, exc)
            continue
        try:
            with engine.begin() as conn:
                # A write first: on SQLite it takes the write lock before anything is read (a read first could
                # not be upgraded once a batch was stored meanwhile); on PostgreSQL it serialises backfillers.
                conn.execute(update(store_settings).where(store_settings.c.name == BACKFILL_SETTING)
                             .values(set_at=dt.datetime.now(dt.timezone.utc)))
                if conn.execute(select(activity_parts.c.batch_id)
                                .where(activity_parts.c.batch_id == row.batch_id).limit(1)).first() is not None:
                    continue  # another process counted it
                # Its sessions locked as commit_batch locks them (PostgreSQL), so a batch of theirs stored now
                # resolves its lead after this commit, not beside it.
                ids = sorted({s for p in parts for s in p.events.column("session_id").unique().to_pylist()})
                conn.execute(select(sessions.c.session_id).where(sessions.c.session_id.in_(ids)).with_for_update())
                record_activity(conn, row.batch_id, [p for p in parts if p.events.num_rows])
                done += 1
        except IntegrityError:  # another process counted it first
            continue
        except SQLAlchemyError as exc:  # the store still opens; the next open goes on from here
            log.warning("activity backfill stopped after %d batches (it resumes when the store is opened "
                        "again): %s", done, exc)
            return done
    with engine.begin() as conn:
        conn.execute(update(store_settings).where(store_settings.c.name == BACKFILL_SETTING)
                     .values(value="done", set_at=dt.datetime.now(dt.timezone.utc)))
    return done
