"""``POST /v1/observations``: an enrolled device uploads the observations of its actions (frames, UI elements,
geometry; ``deskcorder.observations``).

Authentication and rate limits are the batch route's (``_device_auth.py``): the
device's bearer credential first, then a token bucket per device (its own,
with the batch route's rate and burst, so frames never crowd out a device's
events). The body is MessagePack only (a frame is binary), at most
``observations.MAX_BODY_BYTES`` (413 from Content-Length before reading it);
decoding and storing run in a worker thread.

Answers (``{"error", "field", "row"}`` as every error of the collector):

    200 ``{"stored", "duplicates", "files"}``: durable (see ``EventStore.write_observations``); an
        observation already stored with the same values counts as a duplicate and is not stored again
    400 not MessagePack, or built beyond any valid upload's limits; 401 no or a wrong credential
    403 the upload is another device's, the device is revoked, or recording is not permitted: no consent,
        an observation taken outside it (``field`` names it), or more than the policy's ``observe`` allows
        (a frame unless ``observe = "frames"``, anything under ``observe = "none"``): final, do not retry
    409 the session is another device's, or an observation (session_id, action_seq) was stored with other values
    413 body too large; 415 not application/msgpack
    422 not a valid upload (``field``: e.g. ``observations[2].frame.data``), or stamped too far ahead of the
        collector's clock; 429 busy or over the rate limit (``Retry-After``); 503 the store failed
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ..observations import MAX_BODY_BYTES, InvalidObservations, UnreadableObservations, decode_observations
from ..store import EventStore
from ..wire import MSGPACK
from ._device_auth import DEVICE_BURST, DEVICE_RATE_PER_S, RateLimiter, authenticate_request, check_sender
from ._ingest import _check_declared_length, _read_body, _store_answers
from ._openapi import SECURITY, _Answer, problems
from ._problems import Problem

__all__ = ["observations_router", "ObservationsStored"]

MAX_INFLIGHT = 4  # uploads read and stored at once: each may hold MAX_BODY_BYTES
_RETRY_AFTER_S = "1"
_BODY = {"requestBody": {"required": True, "description": "an observations upload (deskcorder.observations): "
                         "{v: 1, device_id, observations: [...]}, MessagePack only (frames are binary)",
                         "content": {MSGPACK: {"schema": {"type": "object"}}}}, **SECURITY["device"]}


class ObservationsStored(_Answer):
    stored: int  # observations stored by this request
    duplicates: int  # already stored with the same values: not stored again
    files: int  # files written


def observations_router(store: EventStore, *, rate_per_s: float = DEVICE_RATE_PER_S,
                        burst: int = DEVICE_BURST) -> APIRouter:
    router = APIRouter()
    limiter = RateLimiter(rate_per_s, burst)
    inflight = [0]  # only touched on the event loop thread

    @router.post("/v1/observations", response_model=ObservationsStored, openapi_extra=_BODY, responses=problems({
        400: "the body is not MessagePack, or is built beyond any valid upload's limits",
        401: "no, a malformed or a wrong device credential: enrol the device",
        403: "another device's upload, a revoked device, or not permitted (consent; the policy's `observe` "
             "level): final, do not retry",
        409: "the session is another device's, or an observation was stored with other values",
        413: "the body is larger than the collector's limit", 415: "the Content-Type is not application/msgpack",
        422: "not a valid upload (`field`), or stamped ahead of the collector's clock",
        429: "too many uploads at once, or over the device's rate limit", 503: "the store is unavailable"}))
    async def post_observations(request: Request) -> dict[str, Any]:
        device = await authenticate_request(store, request)
        await limiter.admit(device.device_id)
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() not in (MSGPACK, "application/x-msgpack"):
            raise Problem(415, f"unsupported Content-Type {content_type!r}; send {MSGPACK} (observations carry "
                               f"binary frames, which JSON cannot)", field="Content-Type")
        _check_declared_length(request, MAX_BODY_BYTES)
        if inflight[0] >= MAX_INFLIGHT:
            raise Problem(429, f"collector busy: {inflight[0]} observation uploads are being stored; retry after "
                               f"{_RETRY_AFTER_S} s", headers={"Retry-After": _RETRY_AFTER_S})
        inflight[0] += 1
        try:
            body = await _read_body(request, MAX_BODY_BYTES)
            return await run_in_threadpool(_store, store, body, device.device_id)
        finally:
            inflight[0] -= 1

    return router


def _store(store: EventStore, body: bytes, device_id: str) -> dict[str, Any]:
    try:
        upload = decode_observations(body)
    except InvalidObservations as exc:
        raise Problem(400 if isinstance(exc, UnreadableObservations) else 422, str(exc), field=exc.field) from exc
    check_sender(upload.device_id, device_id)
    with _store_answers(f"storing {len(upload.observations)} observations of device {device_id}"):
        result = store.write_observations(device_id, upload.observations)
    return {"stored": result.stored, "duplicates": result.duplicates, "files": result.files}
