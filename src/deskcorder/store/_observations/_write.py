"""Storing an upload of observations: the checks, then sealed files, then one manifest transaction.

The same promise as ``EventStore.write_batch`` (``_store.py``): when this
returns, each file is written durably through the event backend and listed in
the manifest (``observation_files``), so a crash before the commit leaves at
most an orphan nobody reads, and the agent's retry rewrites the same path.

What is refused, before anything is written (the collector's answer in brackets):

- an observation stamped too far ahead of the store's clock (422, ``ClockAhead``);
- a device with no employee, an employee being erased, or a ``t_wall_ns``
  outside their consent (403, ``NotPermitted``: the event path's own check,
  ``_people/_consent.check_recording``);
- more than the policy in force allows (403): a frame unless ``observe =
  "frames"``, anything unless ``observe`` is ``elements`` or ``frames``;
- a session another device recorded (409, ``BatchConflict``), from its events
  or its observations;
- an observation (session_id, action_seq) already stored with other values
  (409). The same values again are a duplicate: counted, not stored twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict

import pyarrow as pa
from sqlalchemy import Connection, Engine, and_, or_, select
from sqlalchemy.exc import IntegrityError

from ...observations import Observation
from .._db._manifest import KeyReplaced, check_sessions_owned
from .._db._tables import devices, employee_keys, employees, observation_files, stored_observations
from .._errors import BatchConflict, ClockAhead, NotPermitted
from .._events._backends import EventFiles
from .._events._clock import check_not_ahead
from .._events._keys import KeyWrapper
from .._events._sealed import seal
from .._people._consent import check_recording, current_policy
from .._people._employees import unwrap_key
from ._layout import day_of, observation_hash, relative_path, to_parquet

__all__ = ["ObservationWriteResult", "write_observations"]


@dataclasses.dataclass(frozen=True)
class ObservationWriteResult:
    stored: int  # observations written by this call
    duplicates: int  # observations already stored with the same values (a retry)
    files: int  # files written


def write_observations(engine: Engine, files: EventFiles, wrapper: KeyWrapper, device_id: str,
                       observations: list[Observation], *, now: dt.datetime,
                       max_clock_skew_s: float | None) -> ObservationWriteResult:
    t_wall = pa.array([o.t_wall_ns for o in observations], pa.int64())
    if max_clock_skew_s is not None:
        try:
            check_not_ahead(t_wall, now, max_clock_skew_s)
        except ClockAhead as exc:
            raise ClockAhead(_reworded(str(exc)), field=f"observations[{exc.row}].t_wall_ns", row=exc.row) from exc
    hashes = [observation_hash(o) for o in observations]
    with engine.connect() as conn:
        _check_level(current_policy(conn).policy, observations)
        _check_sessions(conn, device_id, sorted({o.session_id for o in observations}))
        try:
            data_key = check_recording(conn, device_id, t_wall)
        except NotPermitted as exc:
            field = "device_id" if exc.row is None else f"observations[{exc.row}].t_wall_ns"
            raise NotPermitted(_reworded(str(exc)), field=field, row=exc.row) from exc
        fresh = _fresh(conn, observations, hashes)
    if not fresh:
        return ObservationWriteResult(0, len(observations), 0)
    key = unwrap_key(wrapper, data_key)
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i in fresh:
        groups[(observations[i].session_id, day_of(observations[i].t_wall_ns))].append(i)
    rows, keyed, written = [], [], []
    received_at = dt.datetime.now(dt.timezone.utc)
    try:
        for (session_id, day), index in sorted(groups.items()):
            part = [observations[i] for i in index]
            rel = relative_path(device_id, session_id, day, [hashes[i] for i in index])
            sealed = seal(to_parquet(part), key, data_key.key_id, rel)
            files.put(rel, sealed)
            written.append(rel)
            rows.append(_file_row(rel, device_id, session_id, day, data_key.key_id, part, len(sealed), received_at))
            keyed += [{"session_id": session_id, "action_seq": observations[i].action_seq, "device_id": device_id,
                       "content_hash": hashes[i], "path": rel} for i in index]
        with engine.begin() as conn:
            # The device row first: on SQLite this takes the write lock for the whole transaction, and a
            # device whose employee is being erased is refused here, after our files were written.
            alive = conn.execute(devices.update().where(
                devices.c.device_id == device_id,
                select(employees.c.employee_id).where(employees.c.employee_id == devices.c.employee_id,
                                                      employees.c.erasure_started_at.is_(None)).exists())
                .values(last_seen=received_at)).rowcount
            if alive != 1:
                raise NotPermitted(f"device {device_id!r} is no longer registered to an employee who can be "
                                   f"recorded (erased meanwhile); the observations were not stored", field="device_id")
            conn.execute(observation_files.insert(), rows)
            conn.execute(stored_observations.insert(), keyed)
            _check_sessions(conn, device_id, sorted({s for s, _ in groups}))
            current = conn.execute(select(employee_keys.c.key_id).where(
                employee_keys.c.employee_id == data_key.employee_id)).scalar()
            if current != data_key.key_id:  # a deletion replaced the key meanwhile (_lifecycle/_selective.py)
                raise KeyReplaced(f"the data key of device {device_id!r}'s employee was replaced while these "
                                  f"observations were written (some of their data was deleted); nothing was "
                                  f"stored, send them again")
    except IntegrityError:
        # A concurrent upload of the same observations committed first. Its files have our names (a name is
        # a function of the content), so ours are left alone; the second pass answers the duplicates.
        return write_observations(engine, files, wrapper, device_id, observations, now=now,
                                  max_clock_skew_s=max_clock_skew_s)
    except BaseException:
        files.delete(written)
        raise
    return ObservationWriteResult(len(fresh), len(observations) - len(fresh), len(written))


def _reworded(message: str) -> str:
    """The event path's message, for observations (the check and its reasons are the same)."""
    return (message.replace("event row", "observation").replace("from this batch", "from this upload")
            .replace("its events", "its observations").replace("under a new batch_id", "again"))


def _check_level(policy: object, observations: list[Observation]) -> None:
    level = getattr(policy, "observe", "none") if policy is not None else "none"
    for i, o in enumerate(observations):
        if o.frame is not None and level != "frames":
            raise NotPermitted(f"the policy in force records observe = {level!r}, so no frame may be stored; "
                               f"nothing from this upload was stored (the agent must follow the policy it was "
                               f"given: send observations without frames, or none)", field=f"observations[{i}].frame")
        if level == "none":
            raise NotPermitted("the policy in force records observe = 'none', so no observation may be stored; "
                               "nothing from this upload was stored", field=f"observations[{i}]")


def _check_sessions(conn: Connection, device_id: str, session_ids: list[str]) -> None:
    """BatchConflict when a session belongs to another device, by its events or by its observations."""
    try:
        check_sessions_owned(conn, device_id, session_ids)  # the event path's check, which knows observations too
    except BatchConflict as exc:
        raise BatchConflict(str(exc).replace("add events to it", "add observations to it"),
                            field="observations.session_id") from exc


def _fresh(conn: Connection, observations: list[Observation], hashes: list[str]) -> list[int]:
    """Indexes of the observations not stored yet; BatchConflict for one stored with other values."""
    keys = [(o.session_id, o.action_seq) for o in observations]
    stored = {}
    for start in range(0, len(keys), 500):  # bounded IN lists
        chunk = keys[start:start + 500]
        query = select(stored_observations.c.session_id, stored_observations.c.action_seq,
                       stored_observations.c.content_hash).where(
            or_(*(and_(stored_observations.c.session_id == s, stored_observations.c.action_seq == a)
                  for s, a in chunk)))
        stored.update({(r.session_id, r.action_seq): r.content_hash for r in conn.execute(query)})
    fresh = []
    for i, key in enumerate(keys):
        if key not in stored:
            fresh.append(i)
        elif stored[key] != hashes[i]:
            raise BatchConflict(f"the observation of session {key[0]!r} action {key[1]} was already stored with "
                                f"other values; the stored one is kept (one observation per action)",
                                field=f"observations[{i}]")
    return fresh


def _file_row(rel: str, device_id: str, session_id: str, day: str, key_id: str, part: list[Observation],
              stored_bytes: int, received_at: dt.datetime) -> dict[str, object]:
    return {"path": rel, "device_id": device_id, "session_id": session_id, "day": day, "key_id": key_id,
            "n_observations": len(part), "n_frames": sum(o.frame is not None for o in part),
            "n_elements": sum(o.element is not None for o in part),
            "frame_bytes": sum(len(o.frame.data) for o in part if o.frame is not None),
            "stored_bytes": stored_bytes, "first_t_wall_ns": min(o.t_wall_ns for o in part),
            "last_t_wall_ns": max(o.t_wall_ns for o in part), "received_at": received_at}
