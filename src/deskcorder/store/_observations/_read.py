"""Reading observations back: the manifest's files of readable devices, decrypted in memory.

As for events (``_events/_reader.py``): only files ``observation_files`` lists
are read, and only of devices whose employee has a data key and is not being
erased. The audit entry is the caller's (``EventStore.read_observations``).
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa
from sqlalchemy import Connection, func, select

from ...observations import Observation
from .._db._tables import devices, observation_files
from .._errors import StoreError, TamperedData
from .._events._backends import EventFiles
from .._events._keys import KeyWrapper
from .._events._reader import _READABLE
from .._events._sealed import unseal
from .._people._employees import DataKey, unwrap_key
from ._layout import from_parquet

__all__ = ["ObservationSelection", "SessionObservations", "select_observation_files", "load_observations",
           "session_summaries"]


@dataclasses.dataclass(frozen=True)
class ObservationSelection:
    files: dict[str, list[str]]  # device id -> manifest paths
    keys: dict[str, DataKey]  # device id -> its employee's wrapped key

    @property
    def employee_ids(self) -> list[str]:
        return sorted({k.employee_id for d, k in self.keys.items() if d in self.files})


@dataclasses.dataclass(frozen=True)
class SessionObservations:
    """What the manifest says of one session's observations (no decryption)."""

    session_id: str
    observations: int
    frames: int
    elements: int
    frame_bytes: int
    stored_bytes: int


def select_observation_files(conn: Connection, *, employee_id: str | None = None, device_id: str | None = None,
                             session_id: str | None = None, day: str | None = None) -> ObservationSelection:
    # The event reader's query: devices of employees who have a data key and are not being erased.
    mine = [c for c in (None if employee_id is None else devices.c.employee_id == employee_id,
                        None if device_id is None else devices.c.device_id == device_id) if c is not None]
    keys = {row.device_id: DataKey(*row[1:]) for row in conn.execute(_READABLE.where(*mine))}
    if not keys:
        return ObservationSelection({}, {})
    query = (select(observation_files.c.device_id, observation_files.c.path)
             .where(observation_files.c.device_id.in_(list(keys)))
             .order_by(observation_files.c.first_t_wall_ns, observation_files.c.path))
    if session_id is not None:
        query = query.where(observation_files.c.session_id == session_id)
    if day is not None:
        query = query.where(observation_files.c.day == day)
    out: dict[str, list[str]] = {}
    for r in conn.execute(query):
        out.setdefault(r.device_id, []).append(r.path)
    return ObservationSelection(out, keys)


def read_observation_file(files: EventFiles, rel_path: str, key: bytes, key_id: str, *,
                          frames: bool = True) -> list[Observation]:
    try:
        data = files.get(rel_path)
    except OSError as exc:  # as the event reader says it
        why = ("is listed in the manifest but missing; restore it from a backup" if isinstance(exc, FileNotFoundError)
               else f"{exc.strerror or exc}")
        raise StoreError(f"cannot read stored observations: {files.describe(rel_path)}: {why}") from exc
    plain = unseal(data, key, key_id, rel_path)
    try:
        return from_parquet(plain, frames=frames)
    except (OSError, ValueError, pa.ArrowException, KeyError, TypeError) as exc:  # msgpack's are ValueErrors
        raise TamperedData(f"{rel_path} decrypted but is not a valid observation file ({exc})") from exc


def load_observations(files: EventFiles, wrapper: KeyWrapper, selection: ObservationSelection, *,
                      frames: bool = True) -> list[Observation]:
    """The selected files' observations, sorted by (session_id, action_seq)."""
    out: list[Observation] = []
    for device, paths in selection.files.items():
        data_key = selection.keys[device]
        key = unwrap_key(wrapper, data_key)
        for rel in paths:
            out.extend(read_observation_file(files, rel, key, data_key.key_id, frames=frames))
    out.sort(key=lambda o: (o.session_id, o.action_seq))
    return out


def session_summaries(conn: Connection, session_ids: list[str]) -> dict[str, SessionObservations]:
    if not session_ids:
        return {}
    c = observation_files.c
    rows = conn.execute(select(c.session_id, func.sum(c.n_observations), func.sum(c.n_frames), func.sum(c.n_elements),
                               func.sum(c.frame_bytes), func.sum(c.stored_bytes))
                        .where(c.session_id.in_(session_ids)).group_by(c.session_id))
    return {r[0]: SessionObservations(r[0], *(int(v or 0) for v in r[1:])) for r in rows}


def frame_file(conn: Connection, device_ids: list[str], session_id: str, action_seq: int) -> str | None:
    """The listed file holding one observation of these devices (None: not theirs, or no longer stored)."""
    from .._db._tables import stored_observations

    if not device_ids:
        return None
    return conn.execute(select(stored_observations.c.path).where(
        stored_observations.c.session_id == session_id, stored_observations.c.action_seq == action_seq,
        stored_observations.c.device_id.in_(device_ids), stored_observations.c.path.is_not(None))).scalar()
