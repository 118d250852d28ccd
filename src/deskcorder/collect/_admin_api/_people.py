"""Admin routes for people and their devices: employees, devices, enrolment tokens, revocation, consent records.

What the CLI's ``employee``, ``device`` and ``consent`` commands do on the server, over HTTP, each change
audited with the admin's login as actor (``admin:<login>``). A consent is still the person's own act: an
admin only *enters* one given elsewhere (method ``paper``, with its evidence, for the version the person
was shown), exactly as ``deskcorder consent give --evidence`` does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from fastapi import APIRouter, Depends, Path

from ...client import (ConsentEntry, ConsentHistory, ConsentRecord, Device, Employee, EnrolmentToken, NewDevice,
                       NewEmployee, Revocation, TokenRequest)
from ...store import DeviceInfo, EmployeeInfo, EventStore
from .._problems import Problem
from ._auth import admin_problems, stored

__all__ = ["people_routes"]

_HANDLE = Path(description="the employee's handle (login)")
_DEVICE = Path(description="the device's id")
_NO_EMPLOYEE = {None: "path.handle"}  # NotFound names no field: in these routes it is the path's handle


def _employee(store: EventStore, handle: str) -> dict[str, Any]:
    info = stored(store.employee, handle, fields=_NO_EMPLOYEE)
    devices = [d.device_id for d in stored(store.devices, employee=handle)]
    return _employee_json(info, devices, stored(store.consent_history, handle), stored(store.current_policy).version)


def _employees(store: EventStore) -> list[dict[str, Any]]:
    # The policy and the devices once for the whole list; each person's consent history is their own read.
    version = stored(store.current_policy).version
    owned: dict[str, list[str]] = {}
    for d in stored(store.devices):
        owned.setdefault(d.employee_id, []).append(d.device_id)
    return [_employee_json(e, owned.get(e.employee_id, []), stored(store.consent_history, e.handle), version)
            for e in stored(store.employees)]


def _employee_json(info: EmployeeInfo, devices: list[str], history: list[Any], version: int) -> dict[str, Any]:
    latest = history[-1] if history else None
    return {"employee_id": info.employee_id, "handle": info.handle, "display_name": info.display_name,
            "created_at": info.created_at, "devices": devices, "consent_in_force": _in_force(latest, version),
            "latest_consent": latest.as_json() if latest else None}


def _in_force(latest: Any, version: int) -> bool:
    return latest is not None and latest.action == "give" and latest.policy_version == version


def _devices(store: EventStore) -> list[dict[str, Any]]:
    handles = {e.employee_id: e.handle for e in stored(store.employees)}
    credentials = stored(store.device_credentials)
    return [_device(d, handles, credentials) for d in stored(store.devices)]


def _device(d: DeviceInfo, handles: dict[str, str], credentials: dict[str, Any]) -> dict[str, Any]:
    cred = credentials.get(d.device_id)
    state = "not enrolled" if cred is None else "revoked" if cred.revoked_at else "enrolled"
    return {"device_id": d.device_id, "employee_id": d.employee_id, "handle": handles.get(d.employee_id),
            "hostname": d.hostname, "state": state, "registered_at": d.registered_at,
            "revoked_at": cred.revoked_at if cred else None, "first_seen": d.first_seen, "last_seen": d.last_seen,
            "n_batches": d.n_batches, "n_events": d.n_events, "lost": d.lost}


def _one_device(store: EventStore, device_id: str) -> dict[str, Any]:
    found = [d for d in _devices(store) if d["device_id"] == device_id]
    if not found:
        raise Problem(404, f"no device {device_id!r}; GET /v1/admin/devices lists them", field="path.device_id")
    return found[0]


def people_routes(router: APIRouter, store: EventStore, admin: Callable[..., str]) -> None:
    body = {400: "the body is not readable JSON"}

    @router.get("/v1/admin/employees", response_model=list[Employee], responses=admin_problems())
    def list_employees(actor: str = Depends(admin)) -> list[dict[str, Any]]:
        """Every employee with their devices and whether their consent to the current policy is in force."""
        return _employees(store)

    @router.post("/v1/admin/employees", status_code=201, response_model=Employee, responses=admin_problems({
        **body, 409: "an employee with this handle exists", 422: "a malformed handle or display name (`field`)"}))
    def add_employee(new: NewEmployee, actor: str = Depends(admin)) -> dict[str, Any]:
        """Add an employee and their data key; nothing is recorded until they consent. Audited."""
        stored(store.add_employee, new.handle, actor=actor, display_name=new.display_name,
               fields={"employee": "body.handle", "name": "body.display_name"})
        return _employee(store, new.handle)

    @router.get("/v1/admin/employees/{handle}", response_model=Employee, responses=admin_problems({
        404: "no such employee", 422: "a malformed request"}))
    def show_employee(actor: str = Depends(admin), handle: str = _HANDLE) -> dict[str, Any]:
        """One employee, by handle."""
        return _employee(store, handle)

    @router.get("/v1/admin/devices", response_model=list[Device], responses=admin_problems())
    def list_devices(actor: str = Depends(admin)) -> list[dict[str, Any]]:
        """Every device: its owner, hostname, enrolment state, uploads and the events its agent lost."""
        return _devices(store)

    @router.post("/v1/admin/devices", status_code=201, response_model=Device, responses=admin_problems({
        **body, 404: "no such employee", 409: "the device is registered to another employee, or the employee is "
        "being erased", 422: "a malformed device id or hostname (`field`)"}))
    def register_device(new: NewDevice, actor: str = Depends(admin)) -> dict[str, Any]:
        """Register a device to an employee without enrolling it (it still needs a token to upload). Audited."""
        stored(store.register_device, new.device_id, new.employee, new.hostname, actor=actor,
               fields={None: "body.employee", "employee": "body.employee", "device_id": "body.device_id",
                       "hostname": "body.hostname"})
        return _one_device(store, new.device_id)

    @router.post("/v1/admin/employees/{handle}/enrolment-tokens", status_code=201, response_model=EnrolmentToken,
                 responses=admin_problems({**body, 404: "no such employee", 409: "the employee is being erased",
                                           422: "a lifetime outside 1 minute to 30 days (`body.ttl_s`)"}))
    def issue_token(ask: TokenRequest, actor: str = Depends(admin), handle: str = _HANDLE) -> dict[str, Any]:
        """A one-time token enrolling one device of this employee (`deskcorder agent --enrol-token`); shown once."""
        ttl_s = ask.ttl_s
        # Taken before the store's own clock reading: the time said is at most a few ms early, never late.
        expires_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=ttl_s)
        token = stored(store.issue_enrolment_token, handle, actor=actor, ttl_s=ttl_s,
                       fields={**_NO_EMPLOYEE, "ttl": "body.ttl_s"})
        return {"token": token, "employee": handle, "expires_at": expires_at}

    @router.post("/v1/admin/devices/{device_id}/revoke", response_model=Device, responses=admin_problems({
        **body, 404: "no such device", 422: "no reason given (`body.reason`)"}))
    def revoke_device(revocation: Revocation, actor: str = Depends(admin), device_id: str = _DEVICE) -> dict[str, Any]:
        """Revoke a device for good: the collector refuses it from now on; its stored events stay. Audited."""
        _one_device(store, device_id)  # an unknown device is a 404 here, as everywhere in this API
        stored(store.revoke_device, device_id, actor=actor, reason=revocation.reason,
               fields={"reason": "body.reason"})
        return _one_device(store, device_id)

    @router.get("/v1/admin/employees/{handle}/consent", response_model=ConsentHistory, responses=admin_problems({
        404: "no such employee", 422: "a malformed request"}))
    def consent_history(actor: str = Depends(admin), handle: str = _HANDLE) -> dict[str, Any]:
        """The employee's consent acts, oldest first, and whether consent to the current policy is in force."""
        info = stored(store.employee, handle, fields=_NO_EMPLOYEE)
        history = stored(store.consent_history, handle)
        version = stored(store.current_policy).version
        return {"handle": info.handle, "employee_id": info.employee_id, "policy_version": version,
                "in_force": _in_force(history[-1] if history else None, version),
                "records": [c.as_json() for c in history]}

    @router.post("/v1/admin/employees/{handle}/consent", status_code=201, response_model=ConsentRecord,
                 responses=admin_problems({
                     **body, 404: "no such employee", 409: "`give` names another version than the current policy's "
                     "(or none is set), or the employee is being erased",
                     422: "`give` without `policy_version` or `evidence`, or `withdraw` with evidence (`field`)"}))
    def record_consent(entry: ConsentEntry, actor: str = Depends(admin), handle: str = _HANDLE) -> dict[str, Any]:
        """Enter a consent given elsewhere (`give`: the version shown and the evidence) or a withdrawal. Audited."""
        if entry.action == "give" and entry.policy_version is None:
            raise Problem(422, "give needs policy_version: the version whose consent text the person agreed to "
                               "(GET /v1/admin/policy shows it)", field="body.policy_version")
        record = stored(store.record_consent, handle, entry.action, policy_version=entry.policy_version,
                        method="paper" if entry.action == "give" else "api", actor=actor, evidence=entry.evidence,
                        fields={**_NO_EMPLOYEE, "evidence": "body.evidence"})
        return record.as_json()
