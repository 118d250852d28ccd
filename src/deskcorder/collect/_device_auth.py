"""Who is uploading: device authentication and per-device rate limits for the collector.

Every ``POST /v1/batches`` and ``GET /v1/devices/{id}/status`` carries
``Authorization: Bearer <device_id>:<secret>``, the credential the agent got
from ``POST /v1/devices/enrol`` (see ``deskcorder.store._enrolment``). Answers:

    401  (``WWW-Authenticate: Bearer``) no header, a malformed one, an unknown
         device or a wrong secret: enrol the device with a token
    403  the device was revoked, or it names another device than the one it
         authenticated as (in the batch's ``device_id`` or the status path)
    429  (``Retry-After``) the device sent more batches than its rate limit

All of them are decided before the body is read, except the batch's
``device_id`` check, which needs the decoded batch; none stores anything.

The rate limit is a token bucket per device (``rate_per_s`` batches per
second, ``burst`` at once), kept in this collector's memory: behind a load
balancer each collector enforces it on its own share, which bounds what one
device can do to each of them. An agent sends one batch per upload interval
(0.5 s) and drains a backlog back to back, so the default of 20/s with a
burst of 40 never slows an honest agent and stops a runaway or hostile one
from starving the others. ``rate_per_s=0`` turns the limit off (benchmarks).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from typing import Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..store import DeviceCredential, EventStore, NotAuthenticated, NotPermitted, StoreError
from ._problems import Problem, store_problem

__all__ = ["authenticate_request", "check_sender", "RateLimiter", "DEVICE_RATE_PER_S", "DEVICE_BURST", "bearer"]

DEVICE_RATE_PER_S = 20.0
DEVICE_BURST = 40
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="deskcorder"'}


def bearer(device_id: str, secret: str) -> dict[str, str]:
    """The header an enrolled device sends (agents and tests build it here, so the format lives in one place)."""
    return {"Authorization": f"Bearer {device_id}:{secret}"}


def _parse(header: str | None) -> tuple[str, str]:
    fix = ("send Authorization: Bearer <device_id>:<secret>, the credential from POST /v1/devices/enrol "
           "(deskcorder agent --enrol-token TOKEN does this)")
    if not header:
        raise Problem(401, f"this endpoint needs an enrolled device's credential; {fix}", field="Authorization",
                      headers=_CHALLENGE)
    scheme, _, value = header.strip().partition(" ")
    device_id, sep, secret = value.strip().rpartition(":")  # device ids may hold ':', secrets never do
    if scheme.lower() != "bearer" or not sep or not device_id or not secret:
        raise Problem(401, f"malformed Authorization header; {fix}", field="Authorization", headers=_CHALLENGE)
    return device_id, secret


async def authenticate_request(store: EventStore, request: Request) -> DeviceCredential:
    """The authenticated device of this request, or the 401/403/503 Problem."""
    device_id, secret = _parse(request.headers.get("authorization"))
    try:
        return await run_in_threadpool(store.authenticate_device, device_id, secret)
    except (NotAuthenticated, NotPermitted) as exc:
        raise store_problem(exc) from exc
    except StoreError as exc:
        raise Problem(503, f"the collector could not check the device's credential: {exc}",
                      headers={"Retry-After": "1"}) from exc


class RateLimiter:
    """Token buckets per device: ``check(device_id)`` passes or raises a 429 Problem with Retry-After.

    Buckets of devices not heard from are dropped oldest first beyond ``max_devices``;
    a dropped bucket restarts full, which only ever errs towards letting a device through.
    """

    def __init__(self, rate_per_s: float = DEVICE_RATE_PER_S, burst: int = DEVICE_BURST, *,
                 max_devices: int = 200_000, clock: Callable[[], float] = time.monotonic):
        if rate_per_s < 0 or burst < 1:
            raise ValueError(f"rate must be >= 0 (0: no limit) and burst >= 1, got {rate_per_s}, {burst}")
        self.rate, self.burst = rate_per_s, burst
        self._max = max_devices
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # device -> (tokens, at)
        self._lock = threading.Lock()

    def check(self, device_id: str) -> None:
        if self.rate == 0:
            return
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(device_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[device_id] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        if not allowed:
            wait = max(1, math.ceil((1.0 - tokens) / self.rate))
            raise Problem(429, f"device {device_id!r} sent more than {self.rate:g} batches per second (burst "
                               f"{self.burst}); retry after {wait} s with the same batch_id",
                          headers={"Retry-After": str(wait)})


def check_sender(batch_device_id: str, authenticated: str) -> None:
    """403 unless the batch is the authenticated device's own (embedded and fleet collectors alike)."""
    if batch_device_id != authenticated:
        raise Problem(403, f"this request is authenticated as device {authenticated!r}, but the batch is from "
                           f"device {batch_device_id!r}; a device uploads only its own events", field="device_id")
