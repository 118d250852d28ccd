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
``POST /v1/observations``  the same credential; the frames, UI elements and geometry of the device's
                      actions (``deskcorder.observations``, MessagePack only): see ``_observations_api.py``.
``GET /v1/sessions``  stored capture sessions, ``GET /v1/devices`` registered devices: who works when,
                      so admins only (an admin portal account as HTTP Basic, ``_basic_auth.py``;
                      401 without or wrong, 403 for an employee, 429 after repeated wrong passwords).
``GET /openapi.json``, ``/docs``  the API's description and its offline Swagger UI (``_openapi.py``).
Enrolment, recording status, consent and the policy: see ``_people_api.py``; the admin API
(``/v1/admin/...``: employees, devices, consent records, policies, audit, dataset builds): ``_admin_api``.

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
    503 the store failed (disk, database); retry after ``Retry-After`` seconds. The body says only
        that: paths and SQL stay in the collector's log (``_problems.unavailable``)
A 200 means the batch is durable (see ``deskcorder.store``), so a client may
drop its copy; on anything else, or no answer, it retries with the same batch id.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request

from .. import __version__
from ..store import EventStore, StoreError
from ._admin_api import admin_api_router
from ._basic_auth import admin_account
from ._device_auth import DEVICE_BURST, DEVICE_RATE_PER_S, RateLimiter, SharedRateLimiter, authenticate_request
from ._ingest import MAX_BODY_BYTES, MAX_INFLIGHT, BatchIntake, buffer_answers
from ._observations_api import observations_router
from ._openapi import BATCH_BODY, SECURITY, BatchStored, DeviceRow, Health, SessionRow, install_openapi, problems
from ._people_api import AgentCadence, people_router
from ._portal import mount_portal
from ._problems import install_handlers, unavailable
from ._status_push import StatusLogWatch, StatusNotifier

if TYPE_CHECKING:
    from ..fleet import JetStreamPublisher

__all__ = ["create_app", "MAX_BODY_BYTES", "MAX_INFLIGHT"]

log = logging.getLogger("deskcorder.collect")

_RETRY_AFTER_S = "1"


def create_app(store: EventStore, *, max_body_bytes: int = MAX_BODY_BYTES,
               max_inflight: int = MAX_INFLIGHT, publisher: JetStreamPublisher | None = None,
               device_rate_per_s: float = DEVICE_RATE_PER_S, device_burst: int = DEVICE_BURST,
               cadence: AgentCadence = AgentCadence(), database_url: str | None = None) -> FastAPI:
    # publisher: fleet mode (``deskcorder.fleet``), batches go to JetStream instead of the store.
    # device_rate_per_s: batches per second per device (0: no limit), device_burst: at once.
    # cadence: the upload and status intervals every agent is told to use (``_people_api.py``).
    # A fleet's collectors share each device's bucket in the control database, or a device
    # behind the balancer would get the limit once per collector.
    limiter = (RateLimiter(device_rate_per_s, device_burst) if publisher is None
               else SharedRateLimiter(store, device_rate_per_s, device_burst))
    # database_url: the control database's, when PostgreSQL: status changes reach every collector (_status_bus).
    notifier = StatusNotifier()  # wakes the agents' held status requests (_status_push.py)
    store.on_status_change(notifier.changed)
    bus = _status_bus(database_url, store, notifier)
    app = FastAPI(title="deskcorder collector", version=__version__, docs_url=None, redoc_url=None,
                  lifespan=_lifespan(publisher, bus))
    install_openapi(app, _DESCRIPTION)  # the complete document, and /docs served from the package
    # What the portal promises about a pause: the agents hear of it at their next status poll.
    app.state.recording_stops_within = cadence.stops_within()
    install_handlers(app)
    app.include_router(people_router(store, cadence, notifier=notifier))
    app.include_router(admin_api_router(store))  # /v1/admin/...: the admin commands over HTTP (_admin_api)
    app.include_router(observations_router(store, rate_per_s=device_rate_per_s, burst=device_burst))  # _observations_api
    mount_portal(app, store)  # the transparency portal and admin console: /login, /me, /admin
    # Body limits, decoding and storing: _ingest.py.
    intake = BatchIntake(store, max_body_bytes=max_body_bytes, max_inflight=max_inflight, publisher=publisher)

    @app.get("/v1/health", response_model=Health, responses=problems({
        503: "fleet mode: this collector cannot reach NATS JetStream"}))
    def health() -> dict[str, str]:
        if publisher is not None:
            with buffer_answers():
                publisher.check_ready()
        return {"status": "ok", "version": __version__}

    @app.post("/v1/batches", response_model=BatchStored, openapi_extra=BATCH_BODY, responses=problems({
        400: "the body cannot be decoded (JSON, MessagePack) or a bad Content-Length",
        401: "no, a malformed or a wrong device credential: enrol the device",
        403: "the device was revoked, the batch is another device's, or recording is not permitted (the "
             "employee's consent; `row` names the event): final, do not retry",
        409: "the batch id was stored with other content, or the session id is another device's",
        413: "the body is larger than the collector's limit",
        415: "the Content-Type is neither application/msgpack nor application/json",
        422: "the body decodes but is not a valid batch (`field`, `row`)",
        429: "too many batches at once (collector busy) or over the device's rate limit",
        503: "the store (or the fleet's buffer) is unavailable",
    }))
    async def post_batch(request: Request) -> dict[str, Any]:
        # Who is sending comes first: a stranger learns nothing else about the collector.
        device = await authenticate_request(store, request)
        await limiter.admit(device.device_id)  # after authentication: only enrolled devices have buckets
        return await intake.receive(request, device.device_id)

    def admin(request: Request) -> None:
        # Sync: FastAPI runs it in a worker thread, where the (slow on purpose) password check belongs.
        admin_account(store, request)

    listing = {"dependencies": [Depends(admin)], "openapi_extra": SECURITY["admin"], "responses": problems({
        401: "no, a malformed or a wrong admin login", 403: "the login is not an admin account",
        429: "this login is locked after repeated wrong passwords", 503: "the store is unavailable"})}

    @app.get("/v1/sessions", response_model=list[SessionRow], **listing)
    def list_sessions() -> list[dict[str, Any]]:
        return [dataclasses.asdict(s) for s in _listing(store.sessions)]

    @app.get("/v1/devices", response_model=list[DeviceRow], **listing)
    def list_devices() -> list[dict[str, Any]]:
        # Hostnames are personal data and no API client needs them: left out (the admin console shows them).
        return [{"device_id": d.device_id, "employee_id": d.employee_id, "registered_at": d.registered_at.isoformat(),
                 "first_seen": _iso(d.first_seen), "last_seen": _iso(d.last_seen), "n_batches": d.n_batches,
                 "n_events": d.n_events, "lost": d.lost} for d in _listing(store.devices)]

    return app


_DESCRIPTION = ("Agents upload event batches (`POST /v1/batches`) and poll their recording status; people "
                "give or withdraw consent with their portal login; admins list sessions and devices. Every "
                "error answers `{error, field, row}`. The portal's pages (/login, /me, /admin) are not part "
                "of this API.")


def _status_bus(database_url: str | None, store: EventStore, notifier: StatusNotifier) -> Any:
    """A PostgreSQL control database tells every collector of every status change (``fleet/_status_bus.py``);
    an embedded SQLite one appends them to its status log, which the collector watches (``_status_push.py``)."""
    if store.status_log is not None:
        return StatusLogWatch(store.status_log, notifier)
    if database_url is None or not database_url.startswith("postgresql"):
        return None
    from ..fleet import PostgresStatusBus  # psycopg's async side: the fleet extra

    return PostgresStatusBus(database_url, store, notifier)


def _lifespan(*parts: Any) -> Any:
    """The lifespans of the fleet's parts (the JetStream publisher, the status bus) as the app's one."""
    present = [p for p in parts if p is not None]
    if not present:
        return None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        async with contextlib.AsyncExitStack() as stack:
            for part in present:
                await stack.enter_async_context(part.lifespan(app))
            yield

    return lifespan


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _listing(query: Any) -> list[Any]:
    try:
        return query()
    except StoreError as exc:
        raise unavailable("listing", exc) from exc
