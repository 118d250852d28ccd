"""The collector's HTTP API, as a FastAPI app around one ``EventStore``.

Endpoints
---------
``GET /v1/health``    ``{"status": "ok", "version": "..."}``
``POST /v1/batches``  header ``Authorization: Bearer <device_id>:<secret>`` (an enrolled device,
                      see ``_device_auth.py``); body: one wire batch (``deskcorder.wire``): an object
                      ``{"v": 1, "batch_id", "device_id", "events": {column: [values...]}}``
                      as ``application/msgpack`` (the agent) or ``application/json`` (curl).
                      -> 200 ``{"batch_id", "stored", "duplicate"}``; a repeated batch id
                      with the same content -> 200, ``stored: 0, duplicate: true``.
``GET /v1/sessions``  stored capture sessions, ``GET /v1/devices`` registered devices.
Enrolment, recording status, consent and the policy: see ``_people_api.py``.

Errors (body ``{"error", "field", "row"}``, see ``_problems.py``); none of them stores anything:
    400 body cannot be decoded (bad JSON / MessagePack) or a bad Content-Length
    401 no, a malformed or a wrong device credential (``WWW-Authenticate: Bearer``): enrol the device
    403 the device was revoked, or the batch's ``device_id`` is not the authenticated device
        (a device uploads only its own, hence only its own employee's, events). Or
        recording not permitted: the device is not registered to an employee, the employee
        never consented, or an event (``row``) falls outside their consent (after a
        withdrawal, or under a policy version they did not agree to). Final: do not retry
    409 batch id already stored with other content, or another device's session id
    413 body larger than ``max_body_bytes`` (refused from Content-Length before reading it)
    415 Content-Type is neither application/msgpack nor application/json
    422 body decodes but is not a valid batch (``field`` names the culprit, ``row`` the event)
    429 ``max_inflight`` batches already being written, or the device is over its rate limit
        (``device_rate_per_s``, ``device_burst``); retry after ``Retry-After`` seconds
    503 the store failed (disk, database); retry after ``Retry-After`` seconds
A 200 means the batch is durable (see ``deskcorder.store``), so a client may
drop its copy; on anything else, or no answer, it retries with the same batch id.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..store import BatchConflict, EventStore, NotPermitted, StoreError
from ..wire import JSON, MSGPACK, InvalidBatch, UnreadableBatch, decode_batch
from ._device_auth import (DEVICE_BURST, DEVICE_RATE_PER_S, RateLimiter, SharedRateLimiter, authenticate_request,
                           check_sender)
from ._people_api import AgentCadence, people_router
from ._portal import mount_portal
from ._problems import Problem, install_handlers

if TYPE_CHECKING:
    from ._jetstream import JetStreamPublisher

__all__ = ["create_app", "MAX_BODY_BYTES", "MAX_INFLIGHT"]

log = logging.getLogger("deskcorder.collect")

MAX_BODY_BYTES = 32 * 1024 * 1024  # a full 100k-event batch of typical events is a few MiB
MAX_INFLIGHT = 8  # batches read, decoded and written at once (bounds memory); more get 429
_RETRY_AFTER_S = "1"
_ACCEPTED = (MSGPACK, "application/x-msgpack", JSON)


def create_app(store: EventStore, *, max_body_bytes: int = MAX_BODY_BYTES,
               max_inflight: int = MAX_INFLIGHT, publisher: JetStreamPublisher | None = None,
               device_rate_per_s: float = DEVICE_RATE_PER_S, device_burst: int = DEVICE_BURST,
               cadence: AgentCadence = AgentCadence()) -> FastAPI:
    # publisher: fleet mode (``_jetstream.py``), batches go to JetStream instead of the store.
    # device_rate_per_s: batches per second per device (0: no limit), device_burst: at once.
    # cadence: the upload and status intervals every agent is told to use (``_people_api.py``).
    # A fleet's collectors share each device's bucket in the control database, or a device
    # behind the balancer would get the limit once per collector.
    limiter = (RateLimiter(device_rate_per_s, device_burst) if publisher is None
               else SharedRateLimiter(store, device_rate_per_s, device_burst))
    app = FastAPI(title="deskcorder collector", version=__version__,
                  lifespan=None if publisher is None else publisher.lifespan)
    # What the portal promises about a pause: the agents hear of it at their next status poll.
    app.state.recording_stops_within = cadence.stops_within()
    install_handlers(app)
    app.include_router(people_router(store, cadence))
    mount_portal(app, store)  # the transparency portal and admin console: /login, /me, /admin
    inflight = 0  # only touched on the event loop thread, so no lock

    @app.get("/v1/health")
    def health() -> dict[str, str]:
        if publisher is not None:
            publisher.check_ready()
        return {"status": "ok", "version": __version__}

    @app.post("/v1/batches")
    async def post_batch(request: Request) -> dict[str, Any]:
        nonlocal inflight
        # Who is sending comes first: a stranger learns nothing else about the collector.
        device = await authenticate_request(store, request)
        await limiter.admit(device.device_id)  # after authentication: only enrolled devices have buckets
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() not in _ACCEPTED:
            raise Problem(415, f"unsupported Content-Type {content_type!r}; send {MSGPACK} or {JSON}",
                          field="Content-Type")
        _check_declared_length(request, max_body_bytes)
        if inflight >= max_inflight:
            raise Problem(429, f"collector busy: {inflight} batches are being stored; retry after "
                               f"{_RETRY_AFTER_S} s with the same batch_id", headers={"Retry-After": _RETRY_AFTER_S})
        inflight += 1
        try:
            body = await _read_body(request, max_body_bytes)
            if publisher is not None:
                return await publisher.ingest(body, content_type, device.device_id)
            # Decoding is CPU work and storing waits on fsync: both off the event loop.
            return await run_in_threadpool(_ingest, store, body, content_type, device.device_id)
        finally:
            inflight -= 1

    @app.get("/v1/sessions")
    def list_sessions() -> list[dict[str, Any]]:
        return [dataclasses.asdict(s) for s in _listing(store.sessions)]

    @app.get("/v1/devices")
    def list_devices() -> list[dict[str, Any]]:
        # Hostnames are personal data and this endpoint is unauthenticated: left out.
        return [{"device_id": d.device_id, "employee_id": d.employee_id, "registered_at": d.registered_at.isoformat(),
                 "first_seen": _iso(d.first_seen), "last_seen": _iso(d.last_seen), "n_batches": d.n_batches,
                 "n_events": d.n_events} for d in _listing(store.devices)]

    return app


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _listing(query: Any) -> list[Any]:
    try:
        return query()
    except StoreError as exc:
        raise Problem(503, str(exc), headers={"Retry-After": _RETRY_AFTER_S}) from exc


def _check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is None:
        return  # chunked: _read_body counts instead
    if not declared.isdigit():
        raise Problem(400, f"Content-Length {declared!r} is not a byte count", field="Content-Length")
    if int(declared) > limit:
        raise Problem(413, f"body is {int(declared)} bytes; the limit is {limit} bytes "
                           f"(send fewer events per batch)", field="body",
                      headers={"Connection": "close"})


async def _read_body(request: Request, limit: int) -> bytes:
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"body is over the limit of {limit} bytes (send fewer events per batch)",
                          field="body", headers={"Connection": "close"})
        chunks.append(chunk)
    return b"".join(chunks)


def _ingest(store: EventStore, body: bytes, content_type: str, device_id: str) -> dict[str, Any]:
    try:
        batch = decode_batch(body, content_type)
    except InvalidBatch as exc:
        status = 400 if isinstance(exc, UnreadableBatch) else 422
        raise Problem(status, str(exc), field=exc.field, row=exc.row) from exc
    check_sender(batch.device_id, device_id)
    try:
        result = store.write_batch(batch)
    except NotPermitted as exc:
        raise Problem(403, str(exc), field=exc.field, row=exc.row) from exc
    except BatchConflict as exc:
        raise Problem(409, str(exc), field=exc.field) from exc
    except StoreError as exc:
        log.error("storing batch %s failed: %s", batch.batch_id, exc)
        raise Problem(503, f"the collector could not store the batch: {exc}", field=None,
                      headers={"Retry-After": _RETRY_AFTER_S}) from exc
    return {"batch_id": result.batch_id, "stored": result.stored, "duplicate": result.duplicate}
