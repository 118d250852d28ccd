"""Who may call the admin API: an admin portal account, as HTTP Basic, checked exactly as the portal's login
form checks it (``_basic_auth.check_basic``: argon2id, the same lock-out, 429 after repeated wrong passwords),
or a login token from ``POST /v1/admin/login`` as ``Authorization: Bearer dcal_<token>``.

The token is a portal login (``EventStore.portal.open_login``: the store keeps only its hash; it lasts as long
as a portal login, ends at ``POST /v1/admin/logout`` or when the password changes). It exists because the
password hash is slow on purpose (~50 ms of a core per check, far more on a loaded machine): a script making
a hundred calls pays it once, and its wrong guesses cannot lock the admin out.

Answers: 401 without a credential, with a wrong or malformed one, or with a device secret that does not check
out; 403 for a real credential that is not an admin's: an employee's portal login, or an enrolled device's
Bearer secret (it proves who is asking, and that caller may upload, never administer).
"""

from __future__ import annotations

from typing import Any, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ...client import LoginToken
from ...store import Account, EventStore, StoreError
from .._basic_auth import ADMIN_CHALLENGE, check_basic
from .._device_auth import authenticate
from .._openapi import problems
from .._problems import Problem, store_problem

__all__ = ["admin_actor", "admin_account_of", "login_routes", "admin_problems", "stored", "LOGIN_TOKEN_PREFIX"]

# Marks an admin login token on the wire; a device's Bearer credential is ``<device_id>:<secret>``, never this.
LOGIN_TOKEN_PREFIX = "dcal_"

_FIX = ("send Authorization: Basic with an admin portal login and its password "
        "(`deskcorder portal add-admin LOGIN` makes one)")

_AUTH_STATUSES = {
    401: "no, a malformed or a wrong admin login",
    403: "the credential is not an admin's (an employee's portal login, a device's secret)",
    429: "this login is locked after repeated wrong passwords",
    503: "the store is unavailable",
}


def admin_problems(why: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of an admin route: the credential's statuses, and the route's own."""
    return problems({**_AUTH_STATUSES, **(why or {})})


def admin_actor(store: EventStore, request: Request) -> str:
    """The audit actor (``admin:<login>``, as the portal names admins) of this request, else the 401/403 Problem.

    Blocking (the password hash is slow on purpose): FastAPI runs it in a worker thread as a sync dependency.
    """
    header = (request.headers.get("authorization") or "").strip()
    if header[:7].lower() == "bearer " and header[7:].strip().startswith(LOGIN_TOKEN_PREFIX):
        return _token_actor(store, header[7:].strip().removeprefix(LOGIN_TOKEN_PREFIX))
    if header[:7].lower() == "bearer ":
        try:
            authenticate(store, header)
        except Problem as exc:
            if exc.status not in (401, 403):  # the store failed (503)
                raise
            if exc.status == 401:  # a secret that does not check out proves nobody: the admin login is missing
                raise Problem(401, f"the admin API takes no device credential; {_FIX}", field="Authorization",
                              headers=ADMIN_CHALLENGE) from exc
        raise Problem(403, "a device's credential uploads its own events and never administers the collector; "
                           f"{_FIX}", field="Authorization")
    return f"admin:{admin_account_of(store, request).login}"


def admin_account_of(store: EventStore, request: Request) -> Account:
    """The admin account whose login and password this request carries (HTTP Basic only), else 401/403/429."""
    account = check_basic(store, request, missing=f"the admin API is for admins; {_FIX}",
                          wrong=f"wrong login or password; {_FIX}", challenge=ADMIN_CHALLENGE)
    if account.role != "admin":
        raise _not_admin(account.login)
    return account


def _token_actor(store: EventStore, token: str) -> str:
    login = stored(store.portal.find_login, token)
    if login is None:
        raise Problem(401, f"this admin login token is unknown, expired or logged out; get a new one with "
                           f"POST /v1/admin/login, or {_FIX}", field="Authorization", headers=ADMIN_CHALLENGE)
    if login.account.role != "admin":
        raise _not_admin(login.account.login)
    return f"admin:{login.account.login}"


def _not_admin(login: str) -> Problem:
    return Problem(403, f"{login!r} is not an admin account; the admin API manages every person's records and is "
                        f"for admins only", field="Authorization")


def stored(call: Callable[..., Any], *args: Any, fields: dict[str | None, str] | None = None, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)`` on the store, a StoreError answered as its Problem; ``fields`` renames the
    store's field names (``None``: an error naming none) to the request's (``body.handle``, ``handle``)."""
    try:
        return call(*args, **kwargs)
    except StoreError as exc:
        problem = store_problem(exc)
        if fields and problem.field in fields:
            problem.field = fields[problem.field]
        raise problem from exc


def login_routes(router: APIRouter, store: EventStore, admin: Callable[..., str]) -> None:
    @router.post("/v1/admin/login", status_code=201, response_model=LoginToken, responses=problems({
        401: "no, a malformed or a wrong admin login (HTTP Basic: this is where the password goes)",
        403: "the login is not an admin account", 429: "this login is locked after repeated wrong passwords",
        503: "the store is unavailable"}))
    def log_in(request: Request) -> dict[str, Any]:
        """Exchange the admin's password (HTTP Basic) for a login token; send it as `Authorization: Bearer TOKEN`."""
        account = admin_account_of(store, request)
        token, login = stored(store.portal.open_login, account, actor=f"admin:{account.login}")
        return {"token": LOGIN_TOKEN_PREFIX + token, "expires_at": login.expires_at}

    @router.post("/v1/admin/logout", status_code=204, response_class=Response, responses=admin_problems())
    def log_out(request: Request, actor: str = Depends(admin)) -> Response:
        """End this login token (with a password there is nothing to end: 204 all the same)."""
        header = (request.headers.get("authorization") or "").strip()
        token = header[7:].strip()
        if header[:7].lower() == "bearer " and token.startswith(LOGIN_TOKEN_PREFIX):
            stored(store.portal.close_login, token.removeprefix(LOGIN_TOKEN_PREFIX))
        return Response(status_code=204)  # with a password (no token) there is nothing to end
