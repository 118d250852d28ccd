"""The collector's people endpoints: device registration, recording status, consent, and the policy.

``POST /v1/devices/register``  body ``{"device_id", "employee" (handle), "hostname"}``
                               -> 200 ``{"device_id", "employee_id", "hostname", "registered_at"}``;
                               repeating it for the same employee is a no-op. 404 when the employee
                               does not exist (``deskcorder employee add HANDLE`` creates them), 409 when
                               the device belongs to someone else.
``GET /v1/devices/{device_id}/status``
                               -> 200 ``{"device_id", "recording_allowed", "reason", "policy_version",
                               "policy" (TOML text or null), "consent" ({"action", "policy_version",
                               "method", "recorded_at", "scope_text"} or null)}``. The agent polls it
                               every 0.5 s, so it only reads (three indexed lookups) and is not audited.
                               An unknown device gets 200 with ``recording_allowed: false``.
``POST /v1/employees/{handle}/consent``
                               body ``{"action": "give"|"withdraw", "policy_version", "method":
                               "cli"|"portal"|"api"}`` -> 200 the recorded act (as in ``consent`` above).
                               ``give`` must name the current policy version (409 otherwise).
``GET /v1/policy``             -> 200 ``{"version", "policy" (TOML or null), "created_at"}``; version 0
                               with ``policy: null`` until an admin sets one: nothing may be recorded.

Registration and consent are **unauthenticated for now**: anyone who can reach
the collector can register a device to a handle or record consent for it. A
later issue adds enrolment tokens for devices and authentication for the
consent portal; until then run the collector only on a trusted network.
Every change is audited, with the caller's address as the actor.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from ..store import EventStore, StoreError
from ._problems import store_problem

__all__ = ["people_router"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterDevice(_Strict):
    device_id: str
    employee: str
    hostname: str


class ConsentAct(_Strict):
    action: Literal["give", "withdraw"]
    policy_version: int | None = None
    method: Literal["cli", "portal", "api"] = "api"


def _actor(request: Request) -> str:
    return f"http:{request.client.host if request.client else 'unknown'}"


def people_router(store: EventStore) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/devices/register")
    def register_device(body: RegisterDevice, request: Request) -> dict[str, Any]:
        try:
            device = store.register_device(body.device_id, body.employee, body.hostname, actor=_actor(request))
        except StoreError as exc:
            raise store_problem(exc) from exc
        return {"device_id": device.device_id, "employee_id": device.employee_id, "hostname": device.hostname,
                "registered_at": device.registered_at.isoformat()}

    @router.get("/v1/devices/{device_id}/status")
    def device_status(device_id: str) -> dict[str, Any]:
        try:
            return store.device_status(device_id).as_json()
        except StoreError as exc:
            raise store_problem(exc) from exc

    @router.post("/v1/employees/{handle}/consent")
    def record_consent(handle: str, body: ConsentAct, request: Request) -> dict[str, Any]:
        try:
            consent = store.record_consent(handle, body.action, policy_version=body.policy_version,
                                           method=body.method, actor=_actor(request))
        except StoreError as exc:
            raise store_problem(exc) from exc
        return consent.as_json()

    @router.get("/v1/policy")
    def policy() -> dict[str, Any]:
        try:
            current = store.current_policy()
        except StoreError as exc:
            raise store_problem(exc) from exc
        return {"version": current.version, "policy": current.text or None,
                "created_at": current.created_at.isoformat() if current.created_at else None}

    return router
