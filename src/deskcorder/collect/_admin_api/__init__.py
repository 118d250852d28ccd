"""The admin HTTP API, ``/v1/admin/...``: what the admin commands of the CLI do, for an admin portal login.

Every route needs an admin portal account as HTTP Basic, or the login token it was exchanged for
(``_auth.py``: 401 without or wrong, 403 for an employee's login or a device's secret, 429 after repeated
wrong passwords); bodies are the models of ``deskcorder.client`` (the Python client parses answers with the
same ones); every error is the collector's ``{error, field, row}`` body, ``field`` naming the culprit as
FastAPI's own 422s do (``body.handle``, ``path.handle``, ``query.until``).

``POST /v1/admin/login``, ``POST /v1/admin/logout``  a login token for the calls that follow (``_auth.py``)
``GET  /v1/admin/employees``                          every employee, their devices and consent state
``POST /v1/admin/employees``                          add one (201; 409 handle taken; 422 bad handle)
``GET  /v1/admin/employees/{handle}``                 one employee (404)
``GET  /v1/admin/devices``                            every device: owner, hostname, enrolment state, uploads
``POST /v1/admin/devices``                            register a device to an employee (201; 409 someone else's)
``POST /v1/admin/employees/{handle}/enrolment-tokens`` a one-time token for one device of theirs (201)
``POST /v1/admin/devices/{device_id}/revoke``         revoke it for good, with a reason (404 unknown)
``GET  /v1/admin/employees/{handle}/consent``         their consent history, and whether consent is in force
``POST /v1/admin/employees/{handle}/consent``         enter a consent given on paper (give: version + evidence)
                                                      or a withdrawal (201; 409 not the current version)
``GET  /v1/admin/policy``, ``POST /v1/admin/policy``  the current policy with its consent text; set a new
                                                      version (201; 422 invalid or contradicting; 409 not newer)
``GET  /v1/admin/audit``                              entries, filtered by action, employee, since, until
``GET  /v1/admin/audit/verify``                       the hash chain's check, optionally against a kept head
``POST /v1/admin/datasets``, ``GET .../{name}``, ``GET .../{name}/card``
                                                      dataset builds as background jobs (``_builds.py``)

Modules: ``_auth.py`` (who may call), ``_people.py`` (employees, devices, tokens, consent), ``_records.py``
(policy, audit), ``_builds.py`` (dataset builds).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from ...store import EventStore
from .._openapi import SECURITY
from ._auth import admin_actor, login_routes
from ._builds import build_routes
from ._people import people_routes
from ._records import record_routes

__all__ = ["admin_api_router"]


def admin_api_router(store: EventStore) -> APIRouter:
    router = APIRouter(tags=["admin"])

    def admin(request: Request) -> str:
        # Sync: FastAPI runs it in a worker thread, where the (slow on purpose) password check belongs. A
        # dependency of each route, so a stranger gets 401 before the body is validated.
        return admin_actor(store, request)

    login_routes(router, store, admin)
    people_routes(router, store, admin)
    record_routes(router, store, admin)
    build_routes(router, store, admin)
    for route in router.routes:  # every operation says its credential in the OpenAPI document
        security = SECURITY["admin" if getattr(route, "path", "") == "/v1/admin/login" else "admin_api"]
        route.openapi_extra = {**(getattr(route, "openapi_extra", None) or {}), **security}
    return router
