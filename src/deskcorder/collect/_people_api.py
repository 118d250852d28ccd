"""The collector's people endpoints: device enrolment, recording status, consent, and the policy.

``POST /v1/devices/enrol``     body ``{"token", "device_id", "hostname"}`` -> 200 ``{"device_id",
                               "employee_id", "secret"}``: exchanges a one-time enrolment token (from
                               ``deskcorder device token --employee HANDLE``) for the device's own secret,
                               and registers the device to the token's employee. 401 when the token is
                               unknown, used or expired; 409 when the device belongs to someone else or
                               was revoked; 422 for a malformed device id or hostname; 429 (``Retry-After``)
                               after too many attempts from one address (``EnrolmentLimiter``).
``GET /v1/devices/{device_id}/status``
                               needs the device's credential (``Authorization: Bearer <device_id>:<secret>``,
                               see ``_device_auth.py``; 401 without, 403 when revoked or for another device)
                               -> 200 ``{"device_id", "recording_allowed", "reason", "policy_version",
                               "policy" (TOML text or null), "consent" ({"action", "policy_version",
                               "method", "recorded_at", "scope_text"} or null)}``, plus ``"agent":
                               {"upload_interval_s", "status_poll_s"}`` when the collector sets the
                               fleet's cadence (``AgentCadence``), and ``"status_version"``. With
                               ``?wait=S&since=VERSION`` it is held until the answer is no longer
                               VERSION (200) or for about S seconds, at most 60 (304): the status
                               pushed to the agent (``_status_push.py``). It only reads (four indexed
                               lookups) and is not audited.
``POST /v1/employees/{handle}/consent``
                               needs the person's own portal login as HTTP Basic credentials
                               (``Authorization: Basic base64(handle:password)``; 401 without or when
                               wrong, 403 for anyone else's account, admins included); body
                               ``{"action": "give"|"withdraw", "policy_version"}`` -> 200 the recorded act
                               (as in ``consent`` above, ``method: "api"``). ``give`` must name the current
                               policy version (409 otherwise).
``GET /v1/policy``             -> 200 ``{"version", "policy" (TOML or null), "created_at"}``; version 0
                               with ``policy: null`` until an admin sets one: nothing may be recorded.

Consent is personal: only the person can give or withdraw it over HTTP, with
the password of their portal account (``deskcorder portal set-password``),
exactly as on the portal's logged-in pages (``_portal``), so nobody on the
network can consent on someone's behalf. An operator recording a consent
given on paper uses ``deskcorder consent give`` on the server, audited as
the operating-system user. Every change is audited, naming the person only
by employee_id.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from ..store import EventStore, StoreError
from ._basic_auth import check_basic
from ._device_auth import EnrolmentLimiter, authenticate, parse_bearer
from ._openapi import SECURITY, Enrolled, PolicyAnswer, problems
from ._problems import Problem, only_query, store_problem
from ._status_push import MAX_WAIT_S, StatusNotifier, status_version

__all__ = ["people_router", "AgentCadence"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # `policy_version: true` is not version 1


class EnrolDevice(_Strict):
    token: str
    device_id: str
    hostname: str


class ConsentAct(_Strict):
    action: Literal["give", "withdraw"]
    policy_version: int | None = None
    # Recorded as the fact it is: this endpoint is the API; the portal and the CLI record their own.
    method: Literal["api"] = "api"


_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="deskcorder consent"'}


def _the_person_themself(store: EventStore, request: Request, handle: str) -> str:
    """The employee_id of ``handle`` when the request carries their own portal login, else a 401/403 Problem."""
    fix = (f"send Authorization: Basic with {handle!r} and their portal password (set with "
           f"`deskcorder portal set-password {handle}`)")
    account = check_basic(store, request, missing=f"consent is personal: only the person can give or withdraw it; "
                                                  f"{fix}", wrong=f"wrong login or password; {fix}",
                          challenge=_BASIC_CHALLENGE)
    if account.role != "employee" or account.login != handle or account.employee_id is None:
        raise Problem(403, f"consent is personal: {account.login!r} cannot give or withdraw it for {handle!r}, "
                           f"only {handle!r} can (an operator recording a written consent runs `deskcorder "
                           f"consent give --employee {handle} --evidence WHAT` on the server)", field="Authorization")
    return account.employee_id


def _actor(request: Request) -> str:
    return f"http:{request.client.host if request.client else 'unknown'}"


@dataclasses.dataclass(frozen=True)
class AgentCadence:
    """How often every agent should upload and ask for its status (``deskcorder serve --agent-...``).

    A fleet sets it centrally: 70,000 agents polling every 0.5 s are 140,000 requests/s, uploading
    every 0.5 s they send ~7-event batches whose per-batch cost dominates (docs/benchmarks.md).
    None leaves the agents' own settings. Agents cap the poll at 60 s whatever is asked.
    """

    upload_interval_s: float | None = None
    status_poll_s: float | None = None

    @classmethod
    def fleet_default(cls, upload_interval_s: float | None = None, status_poll_s: float | None = None
                      ) -> AgentCadence:
        """A fleet collector's cadence: what was asked, else uploads every 60 s and polls every 10 s.

        Measured (docs/benchmarks.md): a status poll costs a fleet ~6 ms of CPU (collector +
        PostgreSQL), so 70,000 agents polling every 10 s keep ~45 cores busy, every 0.5 s ~900.
        A withdrawal then stops recording at the desk within 10 s; the collectors refuse every
        event stamped after it from the first moment, and the agent deletes what they refuse.
        """
        return cls(60.0 if upload_interval_s is None else upload_interval_s,
                   10.0 if status_poll_s is None else status_poll_s)

    def stops_within(self) -> str:
        """How soon agents hear of a withdrawal or a pause, in words (the agents' default poll is 0.5 s)."""
        if self.status_poll_s is None or self.status_poll_s < 1:
            return "a second"
        return f"{self.status_poll_s + 1:g} seconds"  # one poll interval plus the request

    def as_json(self) -> dict[str, float] | None:
        hints = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return hints or None


def people_router(store: EventStore, cadence: AgentCadence = AgentCadence(),
                  enrol_limiter: EnrolmentLimiter | None = None, notifier: StatusNotifier | None = None) -> APIRouter:
    router = APIRouter()
    if notifier is None:
        notifier = StatusNotifier()
        store.on_status_change(notifier.changed)
    hints = cadence.as_json()
    limiter = EnrolmentLimiter() if enrol_limiter is None else enrol_limiter

    async def admit_enrolment(request: Request) -> None:
        # Before the body is even validated: every attempt counts, well-formed or not (a few dict
        # operations under a lock, so on the event loop).
        limiter.check(request.client.host if request.client else "unknown")

    @router.post("/v1/devices/enrol", dependencies=[Depends(admit_enrolment)], response_model=Enrolled,
                 responses=problems({400: "the body is not readable JSON",
                                     401: "the token is unknown, used or expired: ask an admin for a new one",
                                     409: "the device belongs to someone else or was revoked",
                                     422: "a malformed body, device id or hostname",
                                     429: "too many enrolment attempts from this address",
                                     503: "the store is unavailable"}))
    def enrol_device(body: EnrolDevice, request: Request) -> dict[str, Any]:
        try:
            employee_id, secret = store.enrol_device(body.token, body.device_id, body.hostname,
                                                     actor=_actor(request))
        except StoreError as exc:
            raise store_problem(exc) from exc
        return {"device_id": body.device_id, "employee_id": employee_id, "secret": secret}

    @router.get("/v1/devices/{device_id}/status", openapi_extra=SECURITY["device"], responses=problems({
        401: "no, a malformed or a wrong device credential", 403: "the device was revoked, or this is another "
        "device's status", 422: "a malformed request", 503: "the store is unavailable"}))
    async def device_status(device_id: str, request: Request,
                            wait: float | None = Query(None, ge=0, allow_inf_nan=False, description=(
                                f"hold the answer until it differs from `since`, for up to this many seconds "
                                f"(at most {MAX_WAIT_S:g}); 304 when it did not change")),
                            since: str | None = Query(None, max_length=64, description=(
                                "the `status_version` of the answer the agent holds"))) -> Any:
        header = request.headers.get("authorization")
        if wait is None:
            # One hop to a worker thread for the credential check and the status together: old
            # agents poll this all day, and each hop costs more CPU than the lookups
            # (benchmarks/status_poll.py).
            answer = await run_in_threadpool(poll, device_id, header)
            only_query(request, "wait", "since")  # after the credential: a stranger learns nothing from a 422
            return answer
        claimed, secret = parse_bearer(header)  # 401 for a malformed header, on the loop
        employee_id = notifier.checked_device(device_id, secret) if claimed == device_id else None
        if employee_id is None:  # first request, or something changed: the store decides (401/403)
            employee_id = (await run_in_threadpool(own_device, device_id, header)).employee_id
            notifier.credential_checked(device_id, secret, employee_id)
        only_query(request, "wait", "since")  # ?wait=1&wait=x: FastAPI would read one and drop the rest
        return await notifier.answer(device_id, employee_id, since, wait, read_answers)

    def own_device(device_id: str, header: str | None) -> Any:
        device = authenticate(store, header)
        if device.device_id != device_id:
            raise Problem(403, f"this request is authenticated as device {device.device_id!r}; it may read only "
                               f"its own status, not {device_id!r}", field="device_id")
        return device

    def status_answer(device_id: str) -> dict[str, Any]:
        try:
            answer = store.device_status(device_id).as_json()
        except StoreError as exc:
            raise store_problem(exc) from exc
        if hints is not None:
            answer["agent"] = hints
        return answer

    def poll(device_id: str, header: str | None) -> dict[str, Any]:
        own_device(device_id, header)
        answer = status_answer(device_id)
        return {**answer, "status_version": status_version(answer)}  # which says: ask with ?wait=&since=

    def status_answers(device_ids: list[str]) -> dict[str, dict[str, Any]]:
        try:
            statuses = store.device_statuses(device_ids)
        except StoreError as exc:
            raise store_problem(exc) from exc
        return {d: {**s.as_json(), **({"agent": hints} if hints is not None else {})} for d, s in statuses.items()}

    async def read_answers(device_ids: list[str]) -> dict[str, dict[str, Any]]:
        # The answers of every request woken in one turn of the loop, in one worker thread (_status_push.py).
        return await run_in_threadpool(status_answers, device_ids)

    def the_person(handle: str, request: Request) -> str:
        # A dependency, so the credential is checked before the body is validated: a stranger
        # gets 401, never a lesson in the body's shape. Sync: FastAPI runs it in a worker thread.
        return _the_person_themself(store, request, handle)

    @router.post("/v1/employees/{handle}/consent", openapi_extra=SECURITY["employee"], responses=problems({
        400: "the body is not readable JSON", 401: "no, a malformed or a wrong portal login",
        403: "the login is not this person's own",
        404: "no such employee", 409: "`give` does not name the current policy version",
        422: "a malformed body", 429: "this login is locked after repeated wrong passwords",
        503: "the store is unavailable"}))
    async def record_consent(handle: str, body: ConsentAct, employee_id: str = Depends(the_person)
                             ) -> dict[str, Any]:
        try:
            consent = await run_in_threadpool(store.record_consent, handle, body.action,
                                              policy_version=body.policy_version, method=body.method,
                                              actor=f"employee:{employee_id}")
        except StoreError as exc:
            raise store_problem(exc) from exc
        return consent.as_json()

    @router.get("/v1/policy", response_model=PolicyAnswer, responses=problems({503: "the store is unavailable"}))
    def policy() -> dict[str, Any]:
        try:
            current = store.current_policy()
        except StoreError as exc:
            raise store_problem(exc) from exc
        return {"version": current.version, "policy": current.text or None,
                "created_at": current.created_at.isoformat() if current.created_at else None}

    return router
