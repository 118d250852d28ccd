"""Reading events back: find the readable files of some devices, decrypt them in memory, filter, sort.

Only files the manifest lists are read, so crash leftovers never show up, and
only devices whose employee has a data key and is not being erased are
readable, so an erasure hides their events from its first step on.
"""

from __future__ import annotations

import dataclasses
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, select

from ...events import EVENT_SCHEMA
from .._db._manifest import manifest_files, session_device
from .._errors import StoreError, TamperedData
from ._backends import EventFiles
from ._layout import read_parquet, sort_events
from ._keys import KeyWrapper
from .._people._employees import DataKey, unwrap_key
from ._sealed import unseal
from .._db._tables import devices, employee_keys, employees

__all__ = ["READ_SCHEMA", "Selection", "select_files", "load_events", "read_file"]

READ_SCHEMA = EVENT_SCHEMA.append(pa.field("device_id", pa.string(), nullable=False))


@dataclasses.dataclass(frozen=True)
class Selection:
    files: dict[str, list[str]]  # device id -> manifest paths
    keys: dict[str, DataKey]  # device id -> its employee's wrapped key
    session_id: str | None

    @property
    def employee_ids(self) -> list[str]:
        return sorted({k.employee_id for d, k in self.keys.items() if d in self.files})


_READABLE = (select(devices.c.device_id, employee_keys.c.employee_id, employee_keys.c.key_id,
                    employee_keys.c.wrapped_key, employee_keys.c.master_key_id)
             .join(employees, employees.c.employee_id == devices.c.employee_id)
             .join(employee_keys, employee_keys.c.employee_id == devices.c.employee_id)
             .where(employees.c.erasure_started_at.is_(None)))


def select_files(conn: Connection, *, device_id: str | None = None, session_id: str | None = None,
                 employee_id: str | None = None) -> Selection:
    if session_id is not None:
        owner = session_device(conn, session_id)
        if owner is None or (device_id is not None and owner != device_id):
            return Selection({}, {}, session_id)
        device_id = owner
    query = _READABLE
    if device_id is not None:
        query = query.where(devices.c.device_id == device_id)
    if employee_id is not None:
        query = query.where(devices.c.employee_id == employee_id)
    keys = {r.device_id: DataKey(r.employee_id, r.key_id, r.wrapped_key, r.master_key_id)
            for r in conn.execute(query)}
    files = manifest_files(conn, list(keys)) if keys else {}
    return Selection({d: f for d, f in files.items() if f}, keys, session_id)


def read_file(files: EventFiles, rel_path: str, key: bytes, key_id: str) -> pa.Table:
    try:
        data = files.get(rel_path)
    except FileNotFoundError as exc:
        raise StoreError(f"cannot read stored events: {files.describe(rel_path)} is listed in the manifest but "
                         f"missing; restore it from a backup") from exc
    except OSError as exc:
        raise StoreError(f"cannot read stored events: {files.describe(rel_path)}: {exc.strerror or exc}") from exc
    plain = unseal(data, key, key_id, rel_path)
    try:
        return read_parquet(plain)
    except (OSError, pa.ArrowException) as exc:
        raise TamperedData(f"{rel_path} decrypted but is not a valid event file ({exc})") from exc


def load_events(files: EventFiles, wrapper: KeyWrapper, selection: Selection) -> pa.Table:
    """Decrypt and read the selected files: EVENT_SCHEMA columns + device_id, sorted by (session_id, seq)."""
    parts = []
    for device, rel_paths in selection.files.items():
        data_key = selection.keys[device]
        key = unwrap_key(wrapper, data_key)
        tables = [read_file(files, rel, key, data_key.key_id) for rel in rel_paths]
        table = pa.concat_tables(tables)
        if selection.session_id is not None:
            table = table.filter(pc.equal(table.column("session_id"), selection.session_id))
        parts.append(table.append_column(READ_SCHEMA.field("device_id"),
                                         pa.array([device] * table.num_rows, pa.string())))
    if not parts:
        return READ_SCHEMA.empty_table()
    return sort_events(pa.concat_tables(parts))
