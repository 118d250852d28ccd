"""The collector's OpenAPI document (``/openapi.json``) and its docs page (``/docs``), both served offline.

FastAPI derives paths and JSON bodies from the routes; this module adds what
it cannot see, so that a client (or schemathesis) can trust the document:

- every status an operation answers, each with the one error body of
  ``_problems.py`` (``ProblemBody``) and its headers (``WWW-Authenticate`` on
  401, ``Retry-After`` on 429 and 503): routes pass ``problems({...})``;
- the batch body of ``POST /v1/batches``, which the route reads itself, in
  both encodings, with the JSON Schema derived from the event model
  (``deskcorder.wire.batch_json_schema``, saved as docs/schemas/batch.schema.json);
- the credentials (``SECURITY``): an enrolled device's Bearer secret, an admin's
  or an employee's portal login as HTTP Basic.

``/docs`` is Swagger UI from the ``fastapi-offline`` package (its copy of
swagger-ui-dist), started by our own ``_docs/init.js``: no CDN, and no inline
script, so the page carries a CSP that allows scripts from this collector
only. That CSP (``DOCS_CSP``) is the docs' own; portal pages keep theirs,
which forbids scripts outright (``_portal/_pages.py``). The document and the
page are public: they describe the API's shape, which is open source
anyway, and no data.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import pyarrow as pa
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from ..events import EVENT_SCHEMA, MAX_EVENTS_PER_BATCH
from ..wire import JSON, MSGPACK, batch_json_schema
from ._problems import Problem

__all__ = ["ProblemBody", "problems", "SECURITY", "BATCH_BODY", "install_openapi", "DOCS_CSP", "Health", "BatchStored",
           "SessionRow", "DeviceRow", "Enrolled", "PolicyAnswer"]

_HERE = Path(__file__).parent / "_docs"


class ProblemBody(BaseModel):
    """Every 4xx/5xx answer of the collector (``_problems.py``)."""

    model_config = ConfigDict(extra="forbid")
    error: str  # what was wrong and how to fix it
    field: str | None  # the offending field (a body field, a header, a path parameter) or null
    row: int | None  # the event's row in a batch, or null


class _Answer(BaseModel):
    # extra="allow": a key added to an answer later reaches clients rather than being filtered away here.
    model_config = ConfigDict(extra="allow")


class Health(_Answer):
    status: str
    version: str


class BatchStored(_Answer):
    batch_id: str
    stored: int  # events stored by this request: 0 for a duplicate
    duplicate: bool  # the same batch id with the same content was stored before


class SessionRow(_Answer):
    session_id: str
    device_id: str
    first_t_wall_ns: int
    last_t_wall_ns: int
    n_events: int


class DeviceRow(_Answer):
    device_id: str
    employee_id: str
    registered_at: str
    first_seen: str | None
    last_seen: str | None
    n_batches: int
    n_events: int
    lost: dict[str, int]  # events its agent lost, by reason (queue_full, spool_unavailable, callback_error)


class Enrolled(_Answer):
    device_id: str
    employee_id: str
    secret: str  # shown once: the device keeps it, the collector only a hash


class PolicyAnswer(_Answer):
    version: int
    policy: str | None  # TOML, or null while no policy is set (nothing may be recorded)
    created_at: str | None


_HEADERS = {
    401: {"WWW-Authenticate": {"description": "the credential this endpoint wants", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}},
}


def problems(why: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status in ``why`` (with what it means there) answers a ``ProblemBody``."""
    return {status: {"model": ProblemBody, "description": text, **({"headers": _HEADERS[status]}
                                                                    if status in _HEADERS else {})}
            for status, text in sorted(why.items())}


# Security requirements, for a route's ``openapi_extra``; the schemes are in ``install_openapi``.
SECURITY = {
    "device": {"security": [{"deviceBearer": []}]},
    "admin": {"security": [{"adminBasic": []}]},
    "employee": {"security": [{"employeeBasic": []}]},
    # The admin API (``_admin_api``): the password, or the login token POST /v1/admin/login exchanged it for.
    "admin_api": {"security": [{"adminBasic": []}, {"adminToken": []}]},
}
_SCHEMES = {
    "deviceBearer": {"type": "http", "scheme": "bearer", "bearerFormat": "<device_id>:<secret>",
                     "description": "an enrolled device's credential, from POST /v1/devices/enrol"},
    "adminBasic": {"type": "http", "scheme": "basic",
                   "description": "an admin portal account (`deskcorder portal add-admin LOGIN`) and its password"},
    "adminToken": {"type": "http", "scheme": "bearer", "bearerFormat": "dcal_<token>",
                   "description": "an admin's login token, from POST /v1/admin/login"},
    "employeeBasic": {"type": "http", "scheme": "basic",
                      "description": "the person's own portal login (their handle) and password "
                                     "(`deskcorder portal set-password HANDLE`)"},
}

_BATCH_REF = {"$ref": "#/components/schemas/Batch"}
# ``openapi_extra`` of POST /v1/batches: the route reads the body itself (size limits first), so FastAPI
# cannot see it. One schema, two encodings: MessagePack is how agents send it, JSON is for curl.
BATCH_BODY = {"requestBody": {"required": True, "description": "one wire batch (deskcorder.wire)",
                              "content": {MSGPACK: {"schema": _BATCH_REF}, JSON: {"schema": _BATCH_REF}}},
              **SECURITY["device"]}

DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")


def _batch_schema() -> dict[str, Any]:
    schema = batch_json_schema()
    schema.pop("$schema", None)  # a component of the document, which names its own dialect
    events = schema["properties"]["events"]
    for name in events["required"]:  # a batch holds 1 to MAX_EVENTS_PER_BATCH events (else 422)
        events["properties"][name].update(minItems=1, maxItems=MAX_EVENTS_PER_BATCH)
    # Each integer column holds its Arrow type's range and nothing wider (a larger number answers 422):
    # said here so clients know it, and so generated bodies fit MessagePack's 64-bit integers.
    for name, column in events["properties"].items():
        arrow = EVENT_SCHEMA.field(name).type
        if pa.types.is_integer(arrow):
            item = column["items"]
            for branch in item.get("anyOf", [item]):
                if branch.get("type") == "integer":
                    half = 2 ** (arrow.bit_width - 1)
                    branch["minimum"], branch["maximum"] = -half, half - 1
    return schema


def install_openapi(app: FastAPI, description: str) -> None:
    """Make ``app.openapi()`` the complete document and serve ``/docs`` (create the app with docs_url=None)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=description, routes=app.routes)
            components = spec.setdefault("components", {})
            components.setdefault("schemas", {})["Batch"] = _batch_schema()
            components["securitySchemes"] = _SCHEMES
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return Response(_asset("index.html")[0], media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff",
                                 "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"})

    @app.get("/docs/{name}", include_in_schema=False)
    def docs_asset(name: str) -> Response:
        if name not in _ASSETS or name == "index.html":
            raise Problem(404, f"no docs file {name!r}; the API docs are at /docs", field="name")
        body, media_type = _asset(name)
        return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=3600",
                                                              "X-Content-Type-Options": "nosniff"})


def _swagger_dir() -> Path:
    spec = importlib.util.find_spec("fastapi_offline")  # found, not imported: we only need its files
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the fastapi-offline package (Swagger UI's files) is missing: pip install fastapi-offline")
    return Path(list(spec.submodule_search_locations)[0]) / "static"


# A fixed list, so no name from a URL reaches the disk.
_ASSETS = {
    "index.html": (lambda: _HERE / "index.html", "text/html; charset=utf-8"),
    "init.js": (lambda: _HERE / "init.js", "text/javascript; charset=utf-8"),
    "swagger-ui-bundle.js": (lambda: _swagger_dir() / "swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": (lambda: _swagger_dir() / "swagger-ui.css", "text/css; charset=utf-8"),
}


@functools.cache
def _asset(name: str) -> tuple[bytes, str]:
    where, media_type = _ASSETS[name]
    return where().read_bytes(), media_type
