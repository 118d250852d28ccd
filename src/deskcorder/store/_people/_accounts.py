"""Portal accounts, logins and recording pauses, and the read-only queries of the admin console.

Accounts: an employee's login is their handle (one account per employee); an
admin's login is any other name and belongs to no employee, so an admin
account never opens anyone's events. Passwords are stored as argon2id hashes
(argon2-cffi's defaults, RFC 9106's low-memory profile). Setting a password
ends every login of that account.

Logins: a random token goes into the browser's cookie; only its SHA-256 is
stored, with the login's CSRF token and an absolute expiry (``LOGIN_TTL``).
Erasing an employee removes their account, logins and pause through ON DELETE
CASCADE; from the first step of an erasure on, their logins stop working.

Pauses: an employee may pause recording from the portal whatever their
consent says; ``device_status`` then answers ``recording_allowed: false``
(read there through ``recording_pauses``). Pausing and resuming are audited.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import secrets
from typing import Any, Callable, ContextManager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, or_, select, update

from ...policy import PolicyError, parse_policy
from . import _audit, _login_throttle
from ._consent import current_policy
from .._db._engine import as_utc
from .._db._status_changes import note as note_status_change
from .._errors import Conflict, InvalidInput, NotFound, TooManyLogins
from ._employees import check_handle, get_employee
from .._records import PolicyRecord
from .._db._tables import audit_log, consents, employees, policies, portal_accounts, portal_logins, recording_pauses

__all__ = ["Account", "PortalLogin", "ConsentCoverage", "PortalRecords", "ROLES", "LOGIN_TTL",
           "MIN_PASSWORD_LENGTH"]

ROLES = ("employee", "admin")
LOGIN_TTL = dt.timedelta(hours=8)
MIN_PASSWORD_LENGTH = 10
_MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this bounds the work an attacker can ask for


@dataclasses.dataclass(frozen=True)
class Account:
    login: str
    role: str  # "employee" | "admin"
    employee_id: str | None  # set exactly for employees
    created_at: dt.datetime
    password_set_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class PortalLogin:
    """A logged-in browser: whose account, and the CSRF token its forms must carry."""

    account: Account
    csrf_token: str
    expires_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class ConsentCoverage:
    employees: int  # not being erased
    in_force: int  # latest act is ``give`` for the current policy version
    outdated: int  # gave consent to an older version
    withdrawn: int
    never: int
    paused: int  # of those with consent in force, how many paused recording in the portal
    policy_version: int


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    # Verified against when the login is unknown, so a wrong login takes as long as a wrong password.
    return _hasher().hash(secrets.token_hex(16))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _account(row: Any) -> Account:
    return Account(row.login, row.role, row.employee_id, as_utc(row.created_at), as_utc(row.password_set_at))


def _account_target(account: Account) -> str:
    # The audit log names people only by employee_id; admins by their login.
    return _audit.employee_target(account.employee_id) if account.employee_id else f"admin:{account.login}"


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must be at least {MIN_PASSWORD_LENGTH} characters; choose a longer one "
                           f"(a few unrelated words work well)", field="password")
    if len(password) > _MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must be at most {_MAX_PASSWORD_LENGTH} characters", field="password")


def set_password(conn: Connection, login: str, password: str, role: str, actor: str) -> Account:
    """Create the account or change its password (ending its logins), audited; in the caller's transaction."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {role!r}", field="role")
    check_handle(login)
    _check_password(password)
    _audit.lock_chain(conn)
    existing = conn.execute(select(portal_accounts).where(portal_accounts.c.login == login)).first()
    if existing is not None and existing.role != role:
        raise Conflict(f"account {login!r} is an {existing.role} account, not an {role} account; use: "
                       f"deskcorder portal set-password {login}")
    employee_id = None
    if role == "employee":
        employee = get_employee(conn, login)
        if employee.erasure_started_at is not None:
            raise Conflict(f"employee {login!r} is being erased; finish it with: deskcorder erase --employee {login}")
        employee_id = employee.employee_id
    elif existing is None and conn.execute(select(employees.c.employee_id).where(employees.c.handle == login)
                                           ).first() is not None:
        raise Conflict(f"{login!r} is an employee's handle; an admin account needs a login of its own "
                       f"(e.g. admin-{login}), so that admin rights never open anyone's own data")
    now = _now()
    hashed = _hasher().hash(password)
    _login_throttle.clear_failures(conn, login)  # a new password ends a lock-out
    if existing is None:
        conn.execute(portal_accounts.insert(), {"login": login, "role": role, "employee_id": employee_id,
                                                "password_hash": hashed, "created_at": now, "password_set_at": now})
        account = Account(login, role, employee_id, now, now)
    else:
        conn.execute(update(portal_accounts).where(portal_accounts.c.login == login)
                     .values(password_hash=hashed, password_set_at=now))
        conn.execute(delete(portal_logins).where(portal_logins.c.account_login == login))
        account = dataclasses.replace(_account(existing), password_set_at=now)
    _audit.append(conn, actor=actor, action="portal.password_set", target=_account_target(account), reason="",
                  details={"role": role, "created": existing is None})
    return account


def get_account(conn: Connection, login: str) -> Account:
    row = conn.execute(select(portal_accounts).where(portal_accounts.c.login == login)).first()
    if row is None:
        raise NotFound(f"no portal account {login!r}; create it with: deskcorder portal set-password {login} "
                       f"(employees) or deskcorder portal add-admin {login}")
    return _account(row)


def list_accounts(conn: Connection) -> list[Account]:
    return [_account(r) for r in conn.execute(select(portal_accounts).order_by(portal_accounts.c.login))]


_ACCOUNT_AND_EMPLOYEE = (select(portal_accounts, employees.c.erasure_started_at)
                         .outerjoin(employees, employees.c.employee_id == portal_accounts.c.employee_id))


def authenticate(db: Callable[..., ContextManager[Connection]], login: str, password: str) -> Account | None:
    """The account when the password is right; None otherwise (unknown login, wrong password, being erased).

    Three steps, so that the slow password check runs outside any transaction and
    after its attempt was counted (``_login_throttle.py``): reserve an attempt
    (committed), check the password, forget the count when it was right.
    Raises ``TooManyLogins`` while the login name is locked after repeated failures.
    """
    if not isinstance(login, str) or not 0 < len(login) <= 128:
        return None
    now = _now()
    with db("checking a password", write=True) as conn:
        locked = _login_throttle.reserve_attempt(conn, login, now)
        if locked is not None:
            raise _too_many(login, locked, now)
        row = conn.execute(_ACCOUNT_AND_EMPLOYEE.where(portal_accounts.c.login == login)).first()
    right = isinstance(password, str) and len(password) <= _MAX_PASSWORD_LENGTH
    if right:
        try:
            _hasher().verify(row.password_hash if row is not None else _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            right = False
    if not right or row is None:
        with db("counting a wrong password", write=True) as conn:
            _login_throttle.purge_old(conn, now)  # its own transaction: it touches other names' rows
        return None
    with db("checking a password", write=True) as conn:
        _login_throttle.clear_failures(conn, login)
    if row.erasure_started_at is not None:
        return None
    return _account(row)


def _too_many(login: str, locked: _login_throttle.LockedOut, now: dt.datetime) -> TooManyLogins:
    wait = locked.retry_after_s(now)
    return TooManyLogins(f"too many wrong passwords for {login!r}: this login is locked for {wait} s more; an admin "
                         f"can reset the password with `deskcorder portal set-password {login}`", retry_after_s=wait)


def open_login(conn: Connection, account: Account, actor: str) -> tuple[str, PortalLogin]:
    """A new login for the account: (token for the cookie, the login). Audited; removes expired logins."""
    now = _now()
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    _audit.lock_chain(conn)
    conn.execute(delete(portal_logins).where(portal_logins.c.expires_at < now))
    conn.execute(portal_logins.insert(), {"token_hash": _token_hash(token), "account_login": account.login,
                                          "csrf_token": csrf, "created_at": now, "expires_at": now + LOGIN_TTL})
    _audit.append(conn, actor=actor, action="portal.login", target=_account_target(account), reason="",
                  details={"role": account.role})
    return token, PortalLogin(account, csrf, now + LOGIN_TTL)


_LOGIN_ROW = (select(portal_logins.c.csrf_token, portal_logins.c.expires_at, portal_accounts,
                     employees.c.erasure_started_at)
              .join(portal_accounts, portal_accounts.c.login == portal_logins.c.account_login)
              .outerjoin(employees, employees.c.employee_id == portal_accounts.c.employee_id))


def find_login(conn: Connection, token: str) -> PortalLogin | None:
    """The login of this cookie token, if it exists, has not expired, and its employee is not being erased."""
    row = conn.execute(_LOGIN_ROW.where(portal_logins.c.token_hash == _token_hash(token))).first()
    if row is None or as_utc(row.expires_at) <= _now() or row.erasure_started_at is not None:
        return None
    return PortalLogin(_account(row), row.csrf_token, as_utc(row.expires_at))


def close_login(conn: Connection, token: str) -> None:
    conn.execute(delete(portal_logins).where(portal_logins.c.token_hash == _token_hash(token)))


def pause_recording(conn: Connection, handle: str, actor: str) -> dt.datetime:
    """Pause recording for all of the employee's devices; repeating it keeps the first pause's time."""
    _audit.lock_chain(conn)
    employee = get_employee(conn, handle)
    since = paused_since(conn, employee.employee_id)
    if since is not None:
        return since
    now = _now()
    conn.execute(recording_pauses.insert(), {"employee_id": employee.employee_id, "paused_at": now})
    _audit.append(conn, actor=actor, action="recording.pause", target=_audit.employee_target(employee.employee_id),
                  reason="", details={})
    note_status_change(conn, f"employee:{employee.employee_id}")
    return now


def resume_recording(conn: Connection, handle: str, actor: str) -> bool:
    """End the employee's pause; False when they were not paused."""
    _audit.lock_chain(conn)
    employee = get_employee(conn, handle)
    if conn.execute(delete(recording_pauses).where(recording_pauses.c.employee_id == employee.employee_id)
                    ).rowcount == 0:
        return False
    _audit.append(conn, actor=actor, action="recording.resume", target=_audit.employee_target(employee.employee_id),
                  reason="", details={})
    note_status_change(conn, f"employee:{employee.employee_id}")
    return True


def paused_since(conn: Connection, employee_id: str) -> dt.datetime | None:
    value = conn.execute(select(recording_pauses.c.paused_at)
                         .where(recording_pauses.c.employee_id == employee_id)).scalar()
    return None if value is None else as_utc(value)


def consent_coverage(conn: Connection) -> ConsentCoverage:
    """How many employees have consent in force now, counted in one pass over the consent history."""
    version = current_policy(conn).version
    people = set(conn.execute(select(employees.c.employee_id).where(employees.c.erasure_started_at.is_(None)))
                 .scalars())
    latest: dict[str, Any] = {}
    for row in conn.execute(select(consents.c.employee_id, consents.c.action, consents.c.policy_version)
                            .order_by(consents.c.id)):
        latest[row.employee_id] = row
    paused = set(conn.execute(select(recording_pauses.c.employee_id)).scalars())
    counts = {"in_force": 0, "outdated": 0, "withdrawn": 0, "never": 0}
    paused_in_force = 0
    for employee_id in people:
        act = latest.get(employee_id)
        if act is None:
            counts["never"] += 1
        elif act.action == "withdraw":
            counts["withdrawn"] += 1
        elif version and act.policy_version == version:
            counts["in_force"] += 1
            paused_in_force += employee_id in paused
        else:
            counts["outdated"] += 1
    return ConsentCoverage(employees=len(people), paused=paused_in_force, policy_version=version, **counts)


def policy_history(conn: Connection) -> list[PolicyRecord]:
    """Every stored policy version, newest first."""
    out = []
    for row in conn.execute(select(policies).order_by(policies.c.version.desc())):
        try:
            parsed = parse_policy(row.body)
        except PolicyError:
            parsed = None  # stored by an older, laxer parser: still listed, with its text
        out.append(PolicyRecord(row.version, row.body, parsed, as_utc(row.created_at), row.created_by, row.note))
    return out


def search_audit(conn: Connection, *, action: str | None = None, day: dt.date | None = None,
                 before_id: int | None = None, limit: int = 100) -> list[_audit.AuditEntry]:
    """Audit entries newest first. ``action`` matches itself and its sub-actions ("consent" finds
    "consent.give"); ``day`` is a UTC date; ``before_id`` pages back."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if action:
        query = query.where(or_(audit_log.c.action == action, audit_log.c.action.startswith(action + ".",
                                                                                             autoescape=True)))
    if day is not None:
        start = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
        query = query.where(audit_log.c.at >= start, audit_log.c.at < start + dt.timedelta(days=1))
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    return [_audit._entry(r) for r in conn.execute(query)]


def audit_actions(conn: Connection) -> list[str]:
    return list(conn.execute(select(audit_log.c.action).group_by(audit_log.c.action)
                             .order_by(audit_log.c.action)).scalars())


class PortalRecords:
    """``EventStore.portal``: the store's side of the portal, each call one control-database transaction."""

    LOGIN_TTL = LOGIN_TTL  # how long a login lasts (its cookie's Max-Age too)

    def __init__(self, db: Callable[..., ContextManager[Connection]]):
        self._db = db

    def set_password(self, login: str, password: str, *, role: str, actor: str) -> Account:
        with self._db(f"setting the password of {login!r}", write=True) as conn:
            return set_password(conn, login, password, role, actor)

    def account(self, login: str) -> Account:
        with self._db("reading a portal account", write=False) as conn:
            return get_account(conn, login)

    def accounts(self) -> list[Account]:
        with self._db("listing portal accounts", write=False) as conn:
            return list_accounts(conn)

    def authenticate(self, login: str, password: str) -> Account | None:
        """The account, None for a wrong login or password, or TooManyLogins while the login is locked.

        A lock is raised only before a password is checked; the failure that starts one returns None
        (every attempt is counted, and committed, before its password is checked)."""
        return authenticate(self._db, login, password)

    def open_login(self, account: Account, *, actor: str) -> tuple[str, PortalLogin]:
        with self._db("opening a portal login", write=True) as conn:
            return open_login(conn, account, actor)

    def find_login(self, token: str) -> PortalLogin | None:
        with self._db("reading a portal login", write=False) as conn:
            return find_login(conn, token)

    def close_login(self, token: str) -> None:
        with self._db("closing a portal login", write=True) as conn:
            close_login(conn, token)

    def pause_recording(self, handle: str, *, actor: str) -> dt.datetime:
        with self._db(f"pausing recording of {handle!r}", write=True) as conn:
            return pause_recording(conn, handle, actor)

    def resume_recording(self, handle: str, *, actor: str) -> bool:
        with self._db(f"resuming recording of {handle!r}", write=True) as conn:
            return resume_recording(conn, handle, actor)

    def paused_since(self, handle: str) -> dt.datetime | None:
        with self._db("reading a recording pause", write=False) as conn:
            return paused_since(conn, get_employee(conn, handle).employee_id)

    def consent_coverage(self) -> ConsentCoverage:
        with self._db("counting consent coverage", write=False) as conn:
            return consent_coverage(conn)

    def policy_history(self) -> list[PolicyRecord]:
        with self._db("reading the policy history", write=False) as conn:
            return policy_history(conn)

    def search_audit(self, *, action: str | None = None, day: dt.date | None = None, before_id: int | None = None,
                     limit: int = 100) -> list[_audit.AuditEntry]:
        with self._db("searching the audit log", write=False) as conn:
            return search_audit(conn, action=action, day=day, before_id=before_id, limit=limit)

    def audit_actions(self) -> list[str]:
        with self._db("listing audit actions", write=False) as conn:
            return audit_actions(conn)
