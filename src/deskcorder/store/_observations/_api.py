"""``EventStore``'s observation methods, kept here so that ``_store.py`` stays about events and the control plane.

``ObservationMethods`` is a mixin of ``EventStore``: it uses the store's
engine, event backend (``files``), key wrapper, clock and audit log, and adds
nothing else to its state.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import zlib
from typing import TYPE_CHECKING, Any, Callable, Iterator

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from ...observations import Frame, Observation
from .._db._tables import devices
from .._errors import NotFound, StoreError
from .._people import _audit, _employees
from ._read import (SessionObservations, frame_file, load_observations, read_observation_file,
                    select_observation_files, session_summaries)
from ._write import ObservationWriteResult, write_observations

if TYPE_CHECKING:
    from .._events._backends import EventFiles
    from .._events._keys import KeyWrapper

__all__ = ["ObservationMethods"]

# One upload per device at a time in this process: its retry waits for the first and is answered as duplicates.
# Across devices and processes the manifest's keys decide (an IntegrityError, then duplicates).
_DEVICE_LOCKS = [threading.Lock() for _ in range(64)]


class ObservationMethods:
    _engine: Engine
    files: EventFiles
    _wrapper: KeyWrapper
    _clock: Callable[[], dt.datetime]
    max_clock_skew_s: float | None

    def _check_open(self) -> None: ...  # EventStore's
    def audit(self, actor: str, action: str, target: str, reason: str,
              details: dict[str, Any] | None = None) -> Any: ...  # EventStore's

    @contextlib.contextmanager
    def _observation_db(self, what: str) -> Iterator[Connection]:
        self._check_open()
        try:
            with self._engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"control database error while {what}: {exc}; nothing was changed, retry") from exc

    def write_observations(self, device_id: str, observations: list[Observation]) -> ObservationWriteResult:
        """Store decoded observations (``deskcorder.observations.decode_observations``) of one device, once.

        Returns only when they are durable and listed (as ``write_batch``). Raises ClockAhead, NotPermitted
        (no consent, or more than the policy's ``observe`` allows), BatchConflict (another device's session,
        or an observation stored with other values), StoreError.
        """
        self._check_open()
        try:
            with _DEVICE_LOCKS[zlib.crc32(device_id.encode()) % len(_DEVICE_LOCKS)]:
                return write_observations(self._engine, self.files, self._wrapper, device_id, observations,
                                          now=self._clock(), max_clock_skew_s=self.max_clock_skew_s)
        except SQLAlchemyError as exc:
            raise StoreError(f"control database error while storing observations of device {device_id!r}: {exc}; "
                             f"nothing was acknowledged, send them again") from exc
        except OSError as exc:
            raise StoreError(f"cannot write observation files to {self.files.location}: {exc}") from exc

    def read_observations(self, *, actor: str, purpose: str, session_id: str | None = None,
                          employee: str | None = None, device_id: str | None = None, day: str | None = None,
                          frames: bool = True) -> list[Observation]:
        """Stored observations sorted by (session_id, action_seq); audited (``observations.read``) like
        ``read_events``. ``frames=False`` leaves each frame's bytes out (``data`` empty), for readers of
        elements and geometry. Never an employee's being erased."""
        for name, value in (("actor", actor), ("purpose", purpose)):
            if not isinstance(value, str) or not value.strip():
                from .._errors import InvalidInput

                raise InvalidInput(f"{name} is required (it goes to the audit log)", field=name)
        with self._observation_db("finding observations to read") as conn:
            employee_id = _employees.get_employee(conn, employee).employee_id if employee is not None else None
            selection = select_observation_files(conn, employee_id=employee_id, device_id=device_id,
                                                 session_id=session_id, day=day)
        observations = load_observations(self.files, self._wrapper, selection, frames=frames)
        if session_id is not None:
            observations = [o for o in observations if o.session_id == session_id]
        ids = selection.employee_ids
        details: dict[str, Any] = {"employee_ids": ids, "n_observations": len(observations),
                                   "n_frames": sum(o.frame is not None for o in observations),
                                   "devices": sorted(_audit.device_ref(d) for d in selection.files)}
        if session_id is not None:
            details["session_id"] = session_id
        self.audit(actor, "observations.read", _audit.employee_target(ids[0]) if len(ids) == 1 else "observations",
                   purpose, details)
        return observations

    def observation_summaries(self, session_ids: list[str]) -> dict[str, SessionObservations]:
        """Per session: how many observations, frames and elements are stored, and their bytes (no decryption)."""
        with self._observation_db("counting observations") as conn:
            return session_summaries(conn, session_ids)

    def read_frame(self, employee: str, session_id: str, action_seq: int, *, actor: str, purpose: str) -> Frame:
        """One frame of one of ``employee``'s sessions (the portal's thumbnail); audited. NotFound when it is not
        theirs, has no frame, or is no longer stored (the same answer for each)."""
        with self._observation_db("finding a frame") as conn:
            person = _employees.get_employee(conn, employee)
            device_ids = list(conn.execute(select(devices.c.device_id)
                                           .where(devices.c.employee_id == person.employee_id)).scalars())
            path = frame_file(conn, device_ids, session_id, action_seq)
            selection = select_observation_files(conn, employee_id=person.employee_id, session_id=session_id)
        missing = NotFound(f"no stored frame for action {action_seq} of session {session_id!r}")
        device = next((d for d, paths in selection.files.items() if path in paths), None)
        if path is None or device is None:
            raise missing
        data_key = selection.keys[device]
        key = _employees.unwrap_key(self._wrapper, data_key)
        found = next((o for o in read_observation_file(self.files, path, key, data_key.key_id)
                      if o.session_id == session_id and o.action_seq == action_seq), None)
        if found is None or found.frame is None:
            raise missing
        self.audit(actor, "observations.read", _audit.employee_target(person.employee_id), purpose,
                   {"employee_ids": [person.employee_id], "session_id": session_id, "action_seq": action_seq,
                    "n_frames": 1})
        return found.frame
