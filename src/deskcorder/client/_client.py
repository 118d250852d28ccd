"""``AdminClient``: the collector's admin API (``/v1/admin/...``) as typed Python calls, over httpx.

Each method is one HTTP request (``wait_for_build`` polls one), answers a model
of ``_models.py``, and raises an ``ApiError`` subclass (``_errors.py``) for
every error status. The login is an admin portal account, sent as HTTP Basic
on every request (the collector checks it as the portal's login form does,
lock-out included); ``transport`` is httpx's test seam, e.g.
``httpx.ASGITransport(app)`` for an in-process collector.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from ._errors import ApiError, ClientError, TransportError, error_for
from . import _models as api

__all__ = ["AdminClient"]

_T = TypeVar("_T")


class AdminClient:
    """An admin's session with one collector: ``AdminClient("https://collector:8765", "root", PASSWORD)``.

    ``keep_login`` (the default): the password is sent once, to ``POST /v1/admin/login``, on the first call,
    and the login token it answers is sent from then on (the password check is slow on purpose, the token's
    is not); an expired token is replaced once, transparently. False: the password goes with every request.
    Use it as a context manager (or call ``close``, which logs out) so the login and connections end.
    """

    def __init__(self, base_url: str, login: str, password: str, *, keep_login: bool = True, timeout: float = 30.0,
                 verify: bool | str = True, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self._password = httpx.BasicAuth(login, password)
        self._keep_login = keep_login
        self._token: str | None = None
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, verify=verify, transport=transport)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Log out (when a login token was taken) and release the connections."""
        try:
            if self._token is not None:
                self._request("POST", "/v1/admin/logout")
        except ClientError:
            pass  # the token ends by itself when it expires; closing must not fail on a collector gone away
        finally:
            self._token = None
            self._http.close()

    def log_in(self) -> api.LoginToken:
        """Exchange the password for a login token (what the first call does with ``keep_login``)."""
        answer = self._call("POST", "/v1/admin/login", api.LoginToken, auth=self._password)
        self._token = answer.token
        return answer

    # -- employees ---------------------------------------------------------------------------

    def employees(self) -> list[api.Employee]:
        return self._call("GET", "/v1/admin/employees", list[api.Employee])

    def add_employee(self, handle: str, display_name: str | None = None) -> api.Employee:
        """Add an employee (and their data key); nothing is recorded until they consent."""
        return self._call("POST", "/v1/admin/employees", api.Employee,
                          body=_body(api.NewEmployee, handle=handle, display_name=display_name))

    def employee(self, handle: str) -> api.Employee:
        return self._call("GET", f"/v1/admin/employees/{_seg(handle)}", api.Employee)

    # -- devices and enrolment tokens --------------------------------------------------------

    def devices(self) -> list[api.Device]:
        return self._call("GET", "/v1/admin/devices", list[api.Device])

    def register_device(self, device_id: str, employee: str, hostname: str) -> api.Device:
        """Register a device to an employee without enrolling it (it still needs a token to upload)."""
        return self._call("POST", "/v1/admin/devices", api.Device,
                          body=_body(api.NewDevice, device_id=device_id, employee=employee, hostname=hostname))

    def issue_enrolment_token(self, employee: str, *, ttl_s: float = 86400) -> api.EnrolmentToken:
        """A one-time token enrolling one device of ``employee``: ``deskcorder agent --enrol-token TOKEN``."""
        return self._call("POST", f"/v1/admin/employees/{_seg(employee)}/enrolment-tokens", api.EnrolmentToken,
                          body=_body(api.TokenRequest, ttl_s=ttl_s))

    def revoke_device(self, device_id: str, *, reason: str) -> api.Device:
        """Refuse everything from this device from now on, for good; its stored events stay."""
        return self._call("POST", f"/v1/admin/devices/{_seg(device_id)}/revoke", api.Device,
                          body=_body(api.Revocation, reason=reason))

    # -- consent -----------------------------------------------------------------------------

    def consent_history(self, employee: str) -> api.ConsentHistory:
        return self._call("GET", f"/v1/admin/employees/{_seg(employee)}/consent", api.ConsentHistory)

    def record_consent(self, employee: str, *, policy_version: int, evidence: str) -> api.ConsentRecord:
        """Enter a consent the person gave elsewhere (a signed form) to ``policy_version``, with its evidence."""
        return self._call("POST", f"/v1/admin/employees/{_seg(employee)}/consent", api.ConsentRecord,
                          body=_body(api.ConsentEntry, action="give", policy_version=policy_version, evidence=evidence))

    def withdraw_consent(self, employee: str) -> api.ConsentRecord:
        """Withdraw their consent: their agents stop at the next status poll."""
        return self._call("POST", f"/v1/admin/employees/{_seg(employee)}/consent", api.ConsentRecord,
                          body=_body(api.ConsentEntry, action="withdraw"))

    # -- policy ------------------------------------------------------------------------------

    def policy(self) -> api.Policy:
        return self._call("GET", "/v1/admin/policy", api.Policy)

    def set_policy(self, text: str, *, note: str | None = None) -> api.Policy:
        """Store a new policy version (TOML); everyone must consent again before they are recorded under it."""
        return self._call("POST", "/v1/admin/policy", api.Policy, body=_body(api.NewPolicy, policy=text, note=note))

    # -- audit -------------------------------------------------------------------------------

    def audit(self, *, action: str | None = None, employee: str | None = None, since: dt.datetime | None = None,
              until: dt.datetime | None = None, limit: int | None = None) -> list[api.AuditEntry]:
        """Audit entries oldest first; ``limit``: the newest that many of those that match."""
        params = {k: v.isoformat() if isinstance(v, dt.datetime) else v
                  for k, v in {"action": action, "employee": employee, "since": since, "until": until,
                               "limit": limit}.items() if v is not None}
        return self._call("GET", "/v1/admin/audit", list[api.AuditEntry], params=params)

    def verify_audit(self, *, expect_head: str | None = None) -> api.AuditVerification:
        params = {"expect_head": expect_head} if expect_head is not None else None
        return self._call("GET", "/v1/admin/audit/verify", api.AuditVerification, params=params)

    # -- dataset builds ----------------------------------------------------------------------

    def start_build(self, name: str, *, mode: str = "release", linkable: bool = False, employee: str | None = None,
                    session: str | None = None, idle_gap_s: float = 30.0,
                    formats: tuple[str, ...] = ("parquet", "jsonl"), purpose: str = "dataset build") -> api.Build:
        """Start building a dataset into the collector's dataset folder ``name``; answers at once (state
        running): poll ``build(name)`` or ``wait_for_build(name)``. Options as ``deskcorder dataset build``'s."""
        return self._call("POST", "/v1/admin/datasets", api.Build,
                          body=_body(api.BuildRequest, name=name, mode=mode, linkable=linkable, employee=employee,
                                     session=session, idle_gap_s=idle_gap_s, formats=list(formats), purpose=purpose))

    def build(self, name: str) -> api.Build:
        return self._call("GET", f"/v1/admin/datasets/{_seg(name)}", api.Build)

    def wait_for_build(self, name: str, *, timeout_s: float = 300.0, poll_s: float = 0.25) -> api.Build:
        """The build once it is done or failed; ClientError when it still runs after ``timeout_s`` (it goes on)."""
        deadline = time.monotonic() + timeout_s
        while True:
            build = self.build(name)
            if build.state != "running":
                return build
            if time.monotonic() > deadline:
                raise ClientError(f"dataset build {name!r} still runs after {timeout_s:g} s; ask again later "
                                     f"with build({name!r})")
            time.sleep(poll_s)

    def build_card(self, name: str) -> str:
        """A finished build's dataset card (Markdown, with its YAML header)."""
        return self._request("GET", f"/v1/admin/datasets/{_seg(name)}/card").text

    # -- the one way out ---------------------------------------------------------------------

    def _request(self, method: str, path: str, *, body: BaseModel | None = None,
                 params: dict[str, Any] | None = None, auth: httpx.Auth | None = None) -> httpx.Response:
        if auth is None and self._keep_login and self._token is None:
            self.log_in()
        response = self._send(method, path, body, params, auth)
        if response.status_code == 401 and auth is None and self._token is not None:
            # The token expired or was ended (a password change): nothing was done, so log in again and retry once.
            self.log_in()
            response = self._send(method, path, body, params, auth)
        if response.is_error:
            raise _api_error(response, method, path)
        return response

    def _send(self, method: str, path: str, body: BaseModel | None, params: dict[str, Any] | None,
              auth: httpx.Auth | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token}"} if auth is None and self._token is not None else None
        try:
            return self._http.request(method, path, params=params, headers=headers,
                                      auth=auth or (self._password if headers is None else httpx.USE_CLIENT_DEFAULT),
                                      json=None if body is None else body.model_dump(mode="json", warnings=False))
        except httpx.HTTPError as exc:
            raise TransportError(f"{method} {self.base_url}{path}: no answer ({exc}); is the collector "
                                 f"running there?") from exc

    def _call(self, method: str, path: str, answer: type[_T] | Any, *, body: BaseModel | None = None,
              params: dict[str, Any] | None = None, auth: httpx.Auth | None = None) -> _T:
        response = self._request(method, path, body=body, params=params, auth=auth)
        try:
            return TypeAdapter(answer).validate_json(response.content)
        except ValidationError as exc:
            raise TransportError(f"{method} {path}: the answer is not the admin API's ({exc.errors()[0]['msg']}); "
                                 f"is {self.base_url} a deskcorder collector of this version?") from exc


def _api_error(response: httpx.Response, method: str, path: str) -> ApiError:
    try:
        problem = response.json()
        error, field = str(problem["error"]), problem.get("field")
    except (ValueError, KeyError, TypeError):
        error, field = response.text[:300] or response.reason_phrase, None
    retry = response.headers.get("retry-after")
    return error_for(response.status_code)(response.status_code, error, field=field, method=method, path=path,
                                           retry_after_s=float(retry) if retry and retry.isdigit() else None)


def _body(model: type[BaseModel], **values: Any) -> BaseModel:
    """A request body as given, unvalidated: the collector is the one judge of a value, and its 422 names the
    field (``body.ttl_s``), so the client never disagrees with the server it talks to."""
    return model.model_construct(**values)


def _seg(value: str) -> str:
    """One path segment: a handle or device id with '/' or '?' in it stays one segment."""
    return quote(value, safe="")
