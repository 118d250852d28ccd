"""Device enrolment: one-time tokens, per-device secrets, authentication and revocation.

The flow
--------
1. An admin issues an enrolment token for an employee
   (``deskcorder device token --employee HANDLE``): random, one-time, valid
   for ``ttl_s`` (a day by default). It is shown once; only its SHA-256 is
   stored, so whoever reads the database cannot use it.
2. The agent on that person's desk exchanges it (``POST /v1/devices/enrol``)
   for its device's own secret (32 random bytes). That registers the device
   to the token's employee (the token decides who the device records, not the
   agent) and marks the token used, in one transaction, so a token enrols
   exactly one device. Again only the secret's SHA-256 is stored.
3. Every batch upload and status poll carries ``Authorization: Bearer
   <device_id>:<secret>``; ``authenticate_device`` compares hashes in constant
   time. A wrong or unknown secret is ``NotAuthenticated`` (401); a revoked
   device is ``DeviceRevoked`` (403). The collector then refuses a batch whose
   ``device_id`` is not the authenticated one, so a device writes only its own
   employee's events.
4. ``deskcorder device revoke DEVICE_ID --reason ...`` marks the credential
   revoked. The row stays, so that device id can never be enrolled again (the
   agent must start afresh with a new device id and a new token); its events
   already stored stay until retention or erasure removes them.

Enrolling a device that already has a live credential (the agent lost its
``<state_dir>/credential``) with a new token for the same employee replaces
the secret; the old one stops working at once.

Why SHA-256 and not a slow password hash: tokens and secrets are 24-32
random bytes, not guessable passwords, so a fast hash is as safe and keeps
authentication cheap (it runs on every upload of a 70k-device fleet).

Every issue, enrolment and revocation is audited; the entries never contain
a token, a secret or a hash of one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import Connection, select, update

from . import _audit
from .._db._engine import as_utc
from .._db._status_changes import note as note_status_change
from .._errors import Conflict, DeviceRevoked, InvalidInput, NotAuthenticated
from ._employees import device_info, get_employee, register_device
from .._records import DeviceCredential
from .._db._tables import device_credentials, employees, enrolment_tokens

__all__ = ["TOKEN_PREFIX", "issue_token", "enrol_device", "authenticate", "revoke", "list_credentials"]

TOKEN_PREFIX = "dcet_"  # "deskcorder enrolment token": recognisable in a paste, and in secret scanners
MAX_TTL_S = 30 * 86400


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def issue_token(conn: Connection, handle: str, actor: str, ttl_s: float) -> str:
    """A new one-time token for ``handle``'s next device, audited; in the caller's transaction."""
    if not 60 <= ttl_s <= MAX_TTL_S:
        raise InvalidInput(f"a token's lifetime must be between 1 minute and 30 days, got {ttl_s:g} s",
                           field="ttl")
    _audit.lock_chain(conn)
    employee = get_employee(conn, handle)
    if employee.erasure_started_at is not None:
        raise Conflict(f"employee {handle!r} is being erased; finish it with: deskcorder erase --employee {handle}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    now = _now()
    expires = now + dt.timedelta(seconds=ttl_s)
    conn.execute(enrolment_tokens.insert(), {"token_hash": _hash(token), "employee_id": employee.employee_id,
                                             "created_at": now, "expires_at": expires, "used_at": None,
                                             "used_by_device": None, "created_by": actor})
    _audit.append(conn, actor=actor, action="device.token_issued", target=_audit.employee_target(employee.employee_id),
                  reason="", details={"expires_at": _audit.iso_utc(expires)})
    return token


def enrol_device(conn: Connection, token: str, device_id: str, hostname: str, actor: str) -> tuple[str, str]:
    """Exchange a token for the device's secret: returns (employee_id, secret); in the caller's transaction."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise NotAuthenticated(f"{token!r:.12} is not an enrolment token (they start with {TOKEN_PREFIX}); "
                               f"ask an admin for one: deskcorder device token --employee HANDLE", field="token")
    _audit.lock_chain(conn)
    row = conn.execute(select(enrolment_tokens).where(enrolment_tokens.c.token_hash == _hash(token))).first()
    now = _now()
    fix = "ask an admin for a new one: deskcorder device token --employee HANDLE"
    if row is None:
        raise NotAuthenticated(f"unknown enrolment token; {fix}", field="token")
    if row.used_at is not None:
        raise NotAuthenticated(f"this enrolment token was already used (tokens work once); {fix}", field="token")
    if as_utc(row.expires_at) <= now:
        raise NotAuthenticated(f"this enrolment token expired at {_audit.iso_utc(as_utc(row.expires_at))}; {fix}",
                               field="token")
    handle = conn.execute(select(employees.c.handle).where(employees.c.employee_id == row.employee_id)).scalar_one()
    existing = conn.execute(select(device_credentials).where(device_credentials.c.device_id == device_id)).first()
    if existing is not None and existing.revoked_at is not None:
        raise Conflict(f"device {device_id!r} was revoked by an admin and cannot be enrolled again; enrol this desk "
                       f"as a new device (delete the agent's <state_dir>/device_id and <state_dir>/credential)",
                       field="device_id")
    register_device(conn, device_id, handle, hostname, actor)  # validates the id; Conflict if someone else's
    secret = secrets.token_urlsafe(32)
    if existing is None:
        conn.execute(device_credentials.insert(), {"device_id": device_id, "employee_id": row.employee_id,
                                                   "secret_hash": _hash(secret), "created_at": now,
                                                   "revoked_at": None})
    else:
        conn.execute(update(device_credentials).where(device_credentials.c.device_id == device_id)
                     .values(secret_hash=_hash(secret), created_at=now))
    # Only if still unused: two concurrent enrolments with one token cannot both win.
    claimed = conn.execute(update(enrolment_tokens).where(enrolment_tokens.c.token_hash == row.token_hash,
                                                          enrolment_tokens.c.used_at.is_(None))
                           .values(used_at=now, used_by_device=device_id)).rowcount
    if claimed != 1:
        raise NotAuthenticated(f"this enrolment token was already used (tokens work once); {fix}", field="token")
    _audit.append(conn, actor=actor, action="device.enrol", target=_audit.employee_target(row.employee_id),
                  reason="", details={"device": _audit.device_ref(device_id), "replaced": existing is not None})
    return row.employee_id, secret


def authenticate(conn: Connection, device_id: str, secret: str) -> DeviceCredential:
    """The device's credential if ``secret`` is its secret; NotAuthenticated / DeviceRevoked otherwise."""
    row = conn.execute(select(device_credentials).where(device_credentials.c.device_id == device_id)).first()
    # Compare even for an unknown device, so timing does not tell which device ids exist.
    expected = row.secret_hash if row is not None else "0" * 64
    if not hmac.compare_digest(expected, _hash(secret)) or row is None:
        raise NotAuthenticated(f"device {device_id!r} is not enrolled or its credential is wrong; enrol it with a "
                               f"token from an admin (deskcorder device token --employee HANDLE, then "
                               f"deskcorder agent --enrol-token TOKEN)", field="Authorization")
    if row.revoked_at is not None:
        raise DeviceRevoked(f"device {device_id!r} was revoked by an admin on "
                            f"{_audit.iso_utc(as_utc(row.revoked_at))}; nothing from it is accepted",
                            field="Authorization")
    return _credential(row)


def revoke(conn: Connection, device_id: str, actor: str, reason: str) -> DeviceCredential:
    _audit.lock_chain(conn)
    row = conn.execute(select(device_credentials).where(device_credentials.c.device_id == device_id)).first()
    if row is None:
        if device_info(conn, device_id) is None:
            raise InvalidInput(f"no device {device_id!r}; see: deskcorder device list", field="device_id")
        # Registered without a credential (e.g. before enrolment existed): record the revocation anyway,
        # so the device can never be enrolled afterwards.
        info = device_info(conn, device_id)
        assert info is not None
        now = _now()
        conn.execute(device_credentials.insert(), {"device_id": device_id, "employee_id": info.employee_id,
                                                   "secret_hash": "!" * 64, "created_at": now, "revoked_at": now})
    elif row.revoked_at is not None:
        return _credential(row)
    else:
        conn.execute(update(device_credentials).where(device_credentials.c.device_id == device_id)
                     .values(revoked_at=_now()))
    row = conn.execute(select(device_credentials).where(device_credentials.c.device_id == device_id)).one()
    _audit.append(conn, actor=actor, action="device.revoke", target=_audit.employee_target(row.employee_id),
                  reason=reason, details={"device": _audit.device_ref(device_id)})
    note_status_change(conn, f"device:{device_id}")
    return _credential(row)


def list_credentials(conn: Connection) -> dict[str, DeviceCredential]:
    return {r.device_id: _credential(r) for r in conn.execute(select(device_credentials))}


def _credential(row: Any) -> DeviceCredential:
    return DeviceCredential(row.device_id, row.employee_id, as_utc(row.created_at),
                            as_utc(row.revoked_at) if row.revoked_at else None)
