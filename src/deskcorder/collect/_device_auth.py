"""Who is uploading: device authentication and per-device rate limits for the collector.

Every ``POST /v1/batches`` and ``GET /v1/devices/{id}/status`` carries
``Authorization: Bearer <device_id>:<secret>``, the credential the agent got
from ``POST /v1/devices/enrol`` (see ``EventStore.enrol_device``). Answers:

    401  (``WWW-Authenticate: Bearer``) no header, a malformed one, an unknown
         device or a wrong secret: enrol the device with a token
    403  the device was revoked, or it names another device than the one it
         authenticated as (in the batch's ``device_id`` or the status path)
    429  (``Retry-After``) the device sent more batches than its rate limit

All of them are decided before the body is read, except the batch's
``device_id`` check, which needs the decoded batch; none stores any event
(a fleet collector's rate check does update the device's bucket row).

The rate limit is a token bucket per device (``rate_per_s`` batches per
second, ``burst`` at once). An agent sends one batch per upload interval (0.5 s)
and drains a backlog back to back, so the default of 20/s with a burst of 40
never slows an honest agent and stops a runaway or hostile one from starving the
others. ``rate_per_s=0`` turns the limit off (benchmarks). Where the bucket lives:

embedded collector (``RateLimiter``)
    in the process's memory: it is the only collector, so its buckets are the whole truth.
fleet collectors (``SharedRateLimiter``, ``serve --nats``)
    in the control database, one row per device in ``device_rate_limits``, so a
    device gets its limit once however many collectors the balancer spreads it
    over. Each batch costs one ``INSERT ... ON CONFLICT DO UPDATE`` on that row
    (plus a read when refused, for Retry-After), in a worker thread; collectors
    racing on a device queue on the row lock (``EventStore.take_rate_token``).
    Those transactions commit with ``synchronous_commit = off``: a database crash
    can lose the last fraction of a second of bucket updates, which only gives
    devices back tokens they had spent, and nothing is acknowledged on their
    strength, so they need not wait for a WAL flush. A database failure answers
    503 with Retry-After: no batch passes unchecked.

Enrolment (``POST /v1/devices/enrol``) has no credential yet, so its bucket is
per client address (``EnrolmentLimiter``: ``ENROL_BURST`` attempts at once, then
``ENROL_RATE_PER_S``), good or bad tokens alike: a desk enrols once in its life
and an agent retries a 429 later, while a guesser gets 86,400 tries a day
instead of thousands a second. Behind a reverse proxy on this host the address
is the proxy's ``X-Forwarded-For`` (uvicorn trusts it from 127.0.0.1 only). Each
collector of a fleet keeps its own buckets: the balancer multiplies the rate by
the number of collectors, which still bounds it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..store import DeviceCredential, EventStore, NotAuthenticated, NotPermitted, StoreError
from ._problems import Problem, store_problem, unavailable

__all__ = ["authenticate_request", "authenticate", "parse_bearer", "check_sender", "RateLimiter", "SharedRateLimiter", "DEVICE_RATE_PER_S",
           "DEVICE_BURST", "bearer", "EnrolmentLimiter", "ENROL_RATE_PER_S", "ENROL_BURST"]

DEVICE_RATE_PER_S = 20.0
DEVICE_BURST = 40
ENROL_RATE_PER_S = 1.0  # enrolment attempts per second per client address, after
ENROL_BURST = 30  # this many at once (a lab enrolling its desks behind one NAT address)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="deskcorder"'}


def bearer(device_id: str, secret: str) -> dict[str, str]:
    """The header an enrolled device sends (agents and tests build it here, so the format lives in one place)."""
    return {"Authorization": f"Bearer {device_id}:{secret}"}


def parse_bearer(header: str | None) -> tuple[str, str]:
    """(device_id, secret) of an Authorization header, unchecked; the 401 Problem when it is missing or malformed."""
    return _parse(header)


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
    header = request.headers.get("authorization")
    _parse(header)  # a malformed header is answered without a trip to a worker thread
    return await run_in_threadpool(authenticate, store, header)


def authenticate(store: EventStore, header: str | None) -> DeviceCredential:
    """``authenticate_request`` for code already in a worker thread (blocks on the control database)."""
    device_id, secret = _parse(header)
    try:
        return store.authenticate_device(device_id, secret)
    except (NotAuthenticated, NotPermitted) as exc:
        raise store_problem(exc) from exc
    except StoreError as exc:
        raise unavailable("checking the device's credential", exc) from exc


def _check_limits(rate_per_s: float, burst: int) -> None:
    if rate_per_s < 0 or burst < 1:
        raise ValueError(f"rate must be >= 0 (0: no limit) and burst >= 1, got {rate_per_s}, {burst}")


def _wait_s(rate_per_s: float, tokens: float) -> int:
    """Whole seconds until a bucket holding ``tokens`` (< 1) has one again."""
    return max(1, math.ceil((1.0 - tokens) / rate_per_s))


def _over_limit(device_id: str, rate_per_s: float, burst: int, tokens: float) -> Problem:
    """The 429 for a refused batch; ``tokens``: what the bucket holds now (< 1)."""
    wait = _wait_s(rate_per_s, tokens)
    return Problem(429, f"device {device_id!r} sent more than {rate_per_s:g} batches per second (burst "
                        f"{burst}); retry after {wait} s with the same batch_id",
                   headers={"Retry-After": str(wait)})


class RateLimiter:
    """Token buckets per device in this process: ``check(device_id)`` passes or raises a 429 Problem with Retry-After.

    Buckets of devices not heard from are dropped oldest first beyond ``max_devices``;
    a dropped bucket restarts full, which only ever errs towards letting a device through.
    """

    def __init__(self, rate_per_s: float = DEVICE_RATE_PER_S, burst: int = DEVICE_BURST, *,
                 max_devices: int = 200_000, clock: Callable[[], float] = time.monotonic):
        _check_limits(rate_per_s, burst)
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
            raise self._refusal(device_id, tokens)

    def _refusal(self, device_id: str, tokens: float) -> Problem:
        return _over_limit(device_id, self.rate, self.burst, tokens)

    async def admit(self, device_id: str) -> None:
        """``check`` from the event loop: a few dict operations, so in place."""
        self.check(device_id)


class EnrolmentLimiter(RateLimiter):
    """Enrolment attempts per client address (``check(address)``), refused with 429 and Retry-After."""

    def __init__(self, rate_per_s: float = ENROL_RATE_PER_S, burst: int = ENROL_BURST, **kw: Any):
        super().__init__(rate_per_s, burst, **kw)

    def _refusal(self, address: str, tokens: float) -> Problem:
        wait = _wait_s(self.rate, tokens)
        return Problem(429, f"too many enrolment attempts from {address} (more than {self.burst} at once, then "
                            f"{self.rate:g} per second); retry after {wait} s", field="token",
                       headers={"Retry-After": str(wait)})


class SharedRateLimiter:
    """The same buckets, kept in the store's control database for every collector of the fleet.

    ``check`` blocks on the database (``admit`` runs it in a worker thread); it
    raises the same 429 as ``RateLimiter``, or a 503 with Retry-After when the
    database fails. Call it only for an authenticated device: the bucket row
    references ``devices``.
    """

    def __init__(self, store: EventStore, rate_per_s: float = DEVICE_RATE_PER_S, burst: int = DEVICE_BURST, *,
                 clock: Callable[[], float] = time.time):
        _check_limits(rate_per_s, burst)
        self.rate, self.burst = rate_per_s, burst
        self._store = store
        self._clock = clock  # wall clock: the buckets' timestamps are compared across machines

    def check(self, device_id: str) -> None:
        if self.rate == 0:
            return
        try:
            decision = self._store.take_rate_token(device_id, rate_per_s=self.rate, burst=self.burst,
                                                   now=self._clock())
        except StoreError as exc:
            raise unavailable("checking the device's rate limit", exc) from exc
        if not decision.allowed:
            raise _over_limit(device_id, self.rate, self.burst, decision.tokens)

    async def admit(self, device_id: str) -> None:
        """``check`` off the event loop, which must not wait on the database."""
        if self.rate != 0:
            await run_in_threadpool(self.check, device_id)


def check_sender(batch_device_id: str, authenticated: str) -> None:
    """403 unless the batch is the authenticated device's own (embedded and fleet collectors alike)."""
    if batch_device_id != authenticated:
        raise Problem(403, f"this request is authenticated as device {authenticated!r}, but the batch is from "
                           f"device {batch_device_id!r}; a device uploads only its own events", field="device_id")
