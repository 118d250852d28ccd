"""Logging in and out, the login cookie, CSRF, and the dependencies that say who is asking.

The cookie ``deskcorder_login`` holds a random token and an HMAC of it
(``<token>.<mac>``, key in ``<data_dir>/portal.key`` or
``DESKCORDER_PORTAL_KEY``); the login itself lives in the control database
(``EventStore.portal``), which stores only a hash of the token. So a forged or
altered cookie is refused before any lookup, a stolen database row opens
nothing, and logging out or changing a password ends the login at once.
The cookie is HttpOnly (no script can read it; the pages run none anyway),
SameSite=Lax (not sent on cross-site POSTs) and Secure unless the request
reached us over plain http on a loopback address (``_secure``): over TLS, and
on any other address too, where plain http means a TLS proxy in front of us
(``serve --insecure-http``) or a network the password must not cross.

CSRF: every POST form carries the login's token in ``csrf_token``, compared
in constant time; a POST without it changes nothing. The login form, which
has no login yet, uses a double-submit token in a short-lived cookie instead.

Who may open what: ``/me/...`` needs an employee login and never takes a
person from the URL (the login says whose data it is); ``/admin/...`` needs
an admin login. Without a login a page redirects to ``/login`` and an API
call (``/.../api/...``) answers 401.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ...store import EventStore, PortalLogin, PortalRecords, StoreError, TooManyLogins
from .._problems import Problem, store_problem
from .._transport import is_loopback
from ._pages import CsrfRefused, Forbidden, LoginRequired, redirect, render

__all__ = ["Viewer", "Auth", "read_form", "PORTAL_KEY_ENV", "COOKIE"]

COOKIE = "deskcorder_login"
_PRELOGIN_COOKIE = "deskcorder_prelogin"
PORTAL_KEY_ENV = "DESKCORDER_PORTAL_KEY"
_KEY_FILE = "portal.key"
_MAX_FORM_BYTES = 256 * 1024  # the largest form is the policy editor


@dataclasses.dataclass(frozen=True)
class Viewer:
    """Who is logged in, for one request."""

    login: str
    role: str  # "employee" | "admin"
    employee_id: str | None
    csrf_token: str
    token: str

    @property
    def actor(self) -> str:
        # The audit log names people only by employee_id; admins by their login.
        return f"employee:{self.employee_id}" if self.employee_id else f"admin:{self.login}"

    @property
    def handle(self) -> str:
        """An employee's handle (their login); only meaningful for employees."""
        return self.login


@dataclasses.dataclass(frozen=True)
class Posted:
    """A POST that passed the login and CSRF checks: who sent it and its form fields."""

    viewer: Viewer
    form: dict[str, str]


def load_key(data_dir: Path) -> bytes:
    """The cookie-signing key: ``$DESKCORDER_PORTAL_KEY`` or ``<data_dir>/portal.key`` (created 0600)."""
    text = os.environ.get(PORTAL_KEY_ENV)
    if text:
        return hashlib.sha256(text.encode()).digest()
    path = data_dir / _KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process may have created it a moment ago and be writing it: give it a second.
        for _ in range(50):
            try:
                key = base64.b64decode(path.read_bytes().strip(), validate=True)
            except ValueError:
                key = b""
            if len(key) == 32:
                return key
            time.sleep(0.02)
        raise StoreError(f"{path} does not hold a portal key (base64 of 32 bytes); delete it to have a new one "
                         f"made (everyone is logged out) or set {PORTAL_KEY_ENV}") from None
    with os.fdopen(fd, "wb") as fh:
        key = secrets.token_bytes(32)
        fh.write(base64.b64encode(key) + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    return key


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a form POST (plain HTML forms send ``application/x-www-form-urlencoded``).

    Any other body reads as no fields: the login check still runs first (and
    redirects or answers 401), and a logged-in request then fails the CSRF
    check, so nothing is changed by a POST that is not one of our forms.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise Problem(413, f"form is over {_MAX_FORM_BYTES} bytes", field="body")
    if content_type != "application/x-www-form-urlencoded":
        return {}
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=64))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, f"unreadable form: {exc}", field="body") from exc


class Auth:
    def __init__(self, store: EventStore, key: bytes):
        self._store = store
        self._key = key

    # -- the cookie ------------------------------------------------------------------------
    def _mac(self, token: str) -> str:
        digest = hmac.new(self._key, b"deskcorder login\x00" + token.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def _signed(self, token: str) -> str:
        return f"{token}.{self._mac(token)}"

    def _token(self, request: Request) -> str | None:
        token, _, mac = request.cookies.get(COOKIE, "").partition(".")
        if not token or not hmac.compare_digest(mac.encode(), self._mac(token).encode()):
            return None
        return token

    def _set_cookie(self, request: Request, response: Response, name: str, value: str, max_age: int,
                    path: str = "/") -> None:
        response.set_cookie(name, value, max_age=max_age, path=path, httponly=True, samesite="lax",
                            secure=_secure(request))

    # -- dependencies ----------------------------------------------------------------------
    def viewer(self, request: Request) -> Viewer:
        """Whoever is logged in, any role; LoginRequired otherwise."""
        token = self._token(request)
        if token is None:
            raise LoginRequired()
        try:
            login: PortalLogin | None = self._store.portal.find_login(token)
        except StoreError as exc:
            raise store_problem(exc) from exc
        if login is None:
            raise LoginRequired()
        account = login.account
        return Viewer(account.login, account.role, account.employee_id, login.csrf_token, token)

    def employee(self, request: Request) -> Viewer:
        viewer = self.viewer(request)
        if viewer.role != "employee":
            raise Forbidden("These pages show an employee their own recorded data; an admin account has none. "
                            "Use the admin console at /admin.")
        return viewer

    def admin(self, request: Request) -> Viewer:
        viewer = self.viewer(request)
        if viewer.role != "admin":
            raise Forbidden("The admin console needs an admin account (deskcorder portal add-admin LOGIN). "
                            "Your own data is at /me.")
        return viewer

    def _posted(self, viewer: Viewer, form: dict[str, str]) -> Posted:
        if not hmac.compare_digest(form.get("csrf_token", "").encode(), viewer.csrf_token.encode()):
            raise CsrfRefused("This form did not carry your login's security token (it may be from an older "
                              "login); nothing was changed. Go back, reload the page and send it again.")
        return Posted(viewer, form)

    def any_post(self, request: Request, form: Annotated[dict[str, str], Depends(read_form)]) -> Posted:
        return self._posted(self.viewer(request), form)

    def employee_post(self, request: Request, form: Annotated[dict[str, str], Depends(read_form)]) -> Posted:
        return self._posted(self.employee(request), form)

    def admin_post(self, request: Request, form: Annotated[dict[str, str], Depends(read_form)]) -> Posted:
        return self._posted(self.admin(request), form)

    def current(self, request: Request) -> Viewer | None:
        try:
            return self.viewer(request)
        except LoginRequired:
            return None

    # -- routes ----------------------------------------------------------------------------
    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        store = self._store

        @router.get("/")
        def home(request: Request) -> Response:
            viewer = self.current(request)
            if viewer is None:
                return redirect("/login")
            return redirect("/admin" if viewer.role == "admin" else "/me")

        @router.get("/login")
        def login_page(request: Request, next: str = "") -> Response:
            if self.current(request) is not None:
                return redirect(_safe_next(next) or "/")
            return self._login_form(request, next)

        @router.post("/login")
        async def login(request: Request, form: Annotated[dict[str, str], Depends(read_form)]) -> Response:
            next_ = _safe_next(form.get("next", ""))
            expected = request.cookies.get(_PRELOGIN_COOKIE, "")
            if not expected or not hmac.compare_digest(form.get("csrf_token", "").encode(), expected.encode()):
                return self._login_form(request, next_, status=403,
                                        error="The login form expired or was not sent from this site; try again.")
            login_name = form.get("login", "").strip()
            try:
                account = await run_in_threadpool(store.portal.authenticate, login_name, form.get("password", ""))
                if account is None:
                    return self._login_form(request, next_, status=401, login=login_name,
                                            error="Wrong login or password.")
                actor = f"employee:{account.employee_id}" if account.employee_id else f"admin:{account.login}"
                token, _ = await run_in_threadpool(store.portal.open_login, account, actor=actor)
            except TooManyLogins as exc:
                locked = self._login_form(request, next_, status=429, login=login_name,
                                          error=f"Too many wrong passwords: this login is locked for "
                                                f"{exc.retry_after_s} s. Try again then, or ask an admin "
                                                f"to reset your password.")
                locked.headers["Retry-After"] = str(exc.retry_after_s)
                return locked
            except StoreError as exc:
                raise store_problem(exc) from exc
            response = redirect(next_ or ("/admin" if account.role == "admin" else "/me"))
            self._set_cookie(request, response, COOKIE, self._signed(token),
                             int(PortalRecords.LOGIN_TTL.total_seconds()))
            response.delete_cookie(_PRELOGIN_COOKIE, path="/login")
            return response

        @router.post("/logout")
        def logout(request: Request, posted: Posted = Depends(self.any_post)) -> Response:
            try:
                store.portal.close_login(posted.viewer.token)
            except StoreError as exc:
                raise store_problem(exc) from exc
            response = redirect("/login")
            response.delete_cookie(COOKIE, path="/")
            return response

        return router

    def _login_form(self, request: Request, next_: str, *, status: int = 200, error: str | None = None,
                    login: str = "") -> Response:
        token = secrets.token_urlsafe(32)
        response = render(request, "login.html", status=status, csrf_token=token, next=_safe_next(next_),
                          error=error, login=login)
        self._set_cookie(request, response, _PRELOGIN_COOKIE, token, 3600, path="/login")
        return response


def _secure(request: Request) -> bool:
    """Secure cookies except on plain http to a loopback address (a browser on this machine, or a proxy here)."""
    if request.url.scheme == "https":  # TLS here, or X-Forwarded-Proto from a trusted proxy (uvicorn's)
        return True
    server = request.scope.get("server")  # this connection's local address, not the bound one
    return not (server and is_loopback(str(server[0])))


def _safe_next(value: str) -> str:
    """Only a path on this site (no scheme, no //host): the login must not redirect anywhere else."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value and "\n" not in value:
        return value
    return ""
