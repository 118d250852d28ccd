"""Employees, their wrapped data keys, and the devices registered to them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import secrets
from typing import Any

from sqlalchemy import Connection, select, update

from ...wire import batch_json_schema
from . import _audit
from .._db._engine import as_utc
from .._db._losses import device_losses
from .._errors import Conflict, InvalidInput, NotFound, StoreError
from .._events._keys import KeyWrapper, new_data_key, new_key_id
from .._records import DeviceInfo, EmployeeInfo
from .._db._tables import devices, employee_keys, employees

__all__ = ["DataKey", "add_employee", "get_employee", "list_employees", "register_device", "list_devices",
           "device_info", "unwrap_key", "check_handle"]

_HANDLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
# Device ids follow the wire format's id rule (derived from it, so the two never drift apart).
_DEVICE_ID = re.compile(batch_json_schema()["properties"]["device_id"]["pattern"])
_HOSTNAME = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")


@dataclasses.dataclass(frozen=True)
class DataKey:
    """An employee's wrapped data key as stored (unwrap it with ``unwrap_key``)."""

    employee_id: str
    key_id: str
    wrapped: bytes
    master_key_id: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def check_handle(handle: str) -> str:
    if not isinstance(handle, str) or not _HANDLE.match(handle):
        raise InvalidInput(f"employee handle {handle!r} must be their login: 1-128 characters of letters, digits "
                           f"and . _ @ + -, starting with a letter or digit", field="employee")
    return handle


def _employee(row: Any) -> EmployeeInfo:
    return EmployeeInfo(row.employee_id, row.handle, row.display_name, as_utc(row.created_at),
                        as_utc(row.erasure_started_at) if row.erasure_started_at else None)


def get_employee(conn: Connection, handle: str) -> EmployeeInfo:
    row = conn.execute(select(employees).where(employees.c.handle == check_handle(handle))).first()
    if row is None:
        raise NotFound(f"no employee {handle!r}; add them first with: deskcorder employee add {handle}")
    return _employee(row)


def list_employees(conn: Connection) -> list[EmployeeInfo]:
    return [_employee(r) for r in conn.execute(select(employees).order_by(employees.c.handle))]


def add_employee(conn: Connection, wrapper: KeyWrapper, handle: str, display_name: str | None,
                 actor: str) -> EmployeeInfo:
    """Create the employee and their data key (wrapped), audited; in the caller's transaction."""
    check_handle(handle)
    if display_name is not None and (not display_name.strip() or len(display_name) > 256):
        raise InvalidInput("display name must be 1-256 characters", field="name")
    _audit.lock_chain(conn)
    existing = conn.execute(select(employees.c.employee_id).where(employees.c.handle == handle)).first()
    if existing is not None:
        raise Conflict(f"employee {handle!r} already exists; see: deskcorder employee list")
    now = _now()
    employee_id = "emp_" + secrets.token_hex(10)
    conn.execute(employees.insert(), {"employee_id": employee_id, "handle": handle, "display_name": display_name,
                                      "created_at": now, "erasure_started_at": None})
    key_id = new_key_id()
    conn.execute(employee_keys.insert(), {"employee_id": employee_id, "key_id": key_id,
                                          "wrapped_key": wrapper.wrap(new_data_key()),
                                          "master_key_id": wrapper.key_id, "created_at": now})
    _audit.append(conn, actor=actor, action="employee.add", target=_audit.employee_target(employee_id), reason="",
                  details={"key_id": key_id})
    return EmployeeInfo(employee_id, handle, display_name, now)


def unwrap_key(wrapper: KeyWrapper, key: DataKey) -> bytes:
    if key.master_key_id != wrapper.key_id:
        raise StoreError(f"the data key of {_audit.employee_target(key.employee_id)} was wrapped by master key "
                         f"{key.master_key_id}, but this store has master key {wrapper.key_id}; set "
                         f"DESKCORDER_MASTER_KEY or restore <data_dir>/master.key from your backup")
    return wrapper.unwrap(key.wrapped)


def _device(row: Any) -> DeviceInfo:
    return DeviceInfo(row.device_id, as_utc(row.first_seen) if row.first_seen else None,
                      as_utc(row.last_seen) if row.last_seen else None, row.n_batches, row.n_events,
                      row.employee_id, row.hostname, as_utc(row.registered_at), device_losses(row))


def device_info(conn: Connection, device_id: str) -> DeviceInfo | None:
    row = conn.execute(select(devices).where(devices.c.device_id == device_id)).first()
    return None if row is None else _device(row)


def list_devices(conn: Connection, employee_id: str | None = None) -> list[DeviceInfo]:
    query = select(devices).order_by(devices.c.device_id)
    if employee_id is not None:
        query = query.where(devices.c.employee_id == employee_id)
    return [_device(r) for r in conn.execute(query)]


def register_device(conn: Connection, device_id: str, handle: str, hostname: str, actor: str) -> DeviceInfo:
    """Bind a device to an employee (idempotent for the same employee), audited; in the caller's transaction."""
    if not isinstance(device_id, str) or not _DEVICE_ID.match(device_id):
        raise InvalidInput(f"device_id must be 8-128 characters of A-Z a-z 0-9 _ . : -, got {device_id!r}",
                           field="device_id")
    if not isinstance(hostname, str) or not _HOSTNAME.match(hostname):
        raise InvalidInput("hostname must be 1-255 printable characters", field="hostname")
    _audit.lock_chain(conn)
    employee = get_employee(conn, handle)
    if employee.erasure_started_at is not None:
        raise Conflict(f"employee {handle!r} is being erased; finish it with: deskcorder erase --employee {handle}")
    existing = device_info(conn, device_id)
    if existing is not None:
        if existing.employee_id != employee.employee_id:
            raise Conflict(f"device {device_id!r} is registered to another employee; a device's events are "
                           f"encrypted for its owner, so it cannot change hands: give it a new device id")
        if existing.hostname != hostname:
            conn.execute(update(devices).where(devices.c.device_id == device_id).values(hostname=hostname))
        return dataclasses.replace(existing, hostname=hostname)
    now = _now()
    conn.execute(devices.insert(), {"device_id": device_id, "employee_id": employee.employee_id,
                                    "hostname": hostname, "registered_at": now, "first_seen": None,
                                    "last_seen": None, "n_batches": 0, "n_events": 0})
    _audit.append(conn, actor=actor, action="device.register", target=_audit.employee_target(employee.employee_id),
                  reason="", details={"device": _audit.device_ref(device_id)})
    return DeviceInfo(device_id, None, None, 0, 0, employee.employee_id, hostname, now)
