"""Portal accounts as API credentials: HTTP Basic with a login and its portal password.

Two kinds of caller use them: a person giving or withdrawing their own consent
(``_people_api.py``) and an admin reading the collector's listings
(``GET /v1/sessions``, ``GET /v1/devices``: who works when, so never public).
The password is checked exactly as the portal's login form checks it
(argon2id, the same lock-out after repeated wrong passwords, answered 429
with ``Retry-After``), so an API call is no way around the portal's rules.
Blocking (the password hash is slow on purpose): call from a worker thread.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from ..store import Account, EventStore, StoreError
from ._problems import Problem, store_problem

__all__ = ["basic_credentials", "check_basic", "admin_account", "ADMIN_CHALLENGE"]

ADMIN_CHALLENGE = {"WWW-Authenticate": 'Basic realm="deskcorder admin"'}


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """``(login, password)`` from ``Authorization: Basic ...``; None when absent or malformed."""
    scheme, _, encoded = (request.headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        login, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (login, password) if sep else None


def check_basic(store: EventStore, request: Request, *, missing: str, wrong: str,
                challenge: dict[str, str]) -> Account:
    """The portal account whose login and password the request carries, else a 401 (or 429/503) Problem.

    ``missing`` / ``wrong``: the 401 messages (they name the fix) without credentials / with wrong ones.
    """
    credentials = basic_credentials(request)
    if credentials is None:
        raise Problem(401, missing, field="Authorization", headers=challenge)
    try:
        account = store.portal.authenticate(*credentials)
    except StoreError as exc:
        raise store_problem(exc) from exc
    if account is None:
        raise Problem(401, wrong, field="Authorization", headers=challenge)
    return account


def admin_account(store: EventStore, request: Request) -> Account:
    """The admin portal account of this request (HTTP Basic); 401 without or wrong, 403 for an employee."""
    fix = ("send Authorization: Basic with an admin portal login and its password "
           "(`deskcorder portal add-admin LOGIN` makes one)")
    account = check_basic(store, request, missing=f"this listing is for admins; {fix}",
                          wrong=f"wrong login or password; {fix}", challenge=ADMIN_CHALLENGE)
    if account.role != "admin":
        raise Problem(403, f"{account.login!r} is not an admin account; this listing shows every person's working "
                           f"times and is for admins only", field="Authorization")
    return account
