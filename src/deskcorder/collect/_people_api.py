"""The collector's people endpoints: device enrolment, recording status, consent, and the policy.

``POST /v1/devices/enrol``     body ``{"token", "device_id", "hostname"}`` -> 200 ``{"device_id",
                               "employee_id", "secret"}``: exchanges a one-time enrolment token (from
                               ``deskcorder device token --employee HANDLE``) for the device's own secret,
                               and registers the device to the token's employee. 401 when the token is
                               unknown, used or expired; 409 when the device belongs to someone else or
                               was revoked; 422 for a malformed device id or hostname.
``GET /v1/devices/{device_id}/status``
                               needs the device's credential (``Authorization: Bearer <device_id>:<secret>``,
                               see ``_device_auth.py``; 401 without, 403 when revoked or for another device)
                               -> 200 ``{"device_id", "recording_allowed", "reason", "policy_version",
                               "policy" (TOML text or null), "consent" ({"action", "policy_version",
                               "method", "recorded_at", "scope_text"} or null)}``. The agent polls it
                               every 0.5 s, so it only reads (four indexed lookups) and is not audited.
``POST /v1/employees/{handle}/consent``
                               body ``{"action": "give"|"withdraw", "policy_version", "method":
                               "cli"|"portal"|"api"}`` -> 200 the recorded act (as in ``consent`` above).
                               ``give`` must name the current policy version (409 otherwise).
``GET /v1/policy``             -> 200 ``{"version", "policy" (TOML or null), "created_at"}``; version 0
                               with ``policy: null`` until an admin sets one: nothing may be recorded.

Devices authenticate; ``POST /v1/employees/{handle}/consent`` does not (yet):
it is the API behind ``deskcorder consent`` scripts, while people give and
withdraw consent themselves through the portal's logged-in pages (``_portal``).
Keep this endpoint on a trusted network (or behind the reverse proxy's auth).
Every change is audited, with the caller's address as the actor.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from ..store import EventStore, StoreError
from ._device_auth import authenticate_request
from ._problems import Problem, store_problem

__all__ = ["people_router"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrolDevice(_Strict):
    token: str
    device_id: str
    hostname: str


class ConsentAct(_Strict):
    action: Literal["give", "withdraw"]
    policy_version: int | None = None
    method: Literal["cli", "portal", "api"] = "api"


def _actor(request: Request) -> str:
    return f"http:{request.client.host if request.client else 'unknown'}"


def people_router(store: EventStore) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/devices/enrol")
    def enrol_device(body: EnrolDevice, request: Request) -> dict[str, Any]:
        try:
            employee_id, secret = store.enrol_device(body.token, body.device_id, body.hostname,
                                                     actor=_actor(request))
        except StoreError as exc:
            raise store_problem(exc) from exc
        return {"device_id": body.device_id, "employee_id": employee_id, "secret": secret}

    @router.get("/v1/devices/{device_id}/status")
    async def device_status(device_id: str, request: Request) -> dict[str, Any]:
        device = await authenticate_request(store, request)
        if device.device_id != device_id:
            raise Problem(403, f"this request is authenticated as device {device.device_id!r}; it may read only "
                               f"its own status, not {device_id!r}", field="device_id")
        try:
            return (await run_in_threadpool(store.device_status, device_id)).as_json()
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
