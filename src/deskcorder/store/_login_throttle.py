"""Failed portal logins, counted per login name, lock that name out for a while.

Passwords guard each person's consent, their recorded text, their export and
their erasure, so guessing must be slow. After ``FREE_FAILURES`` wrong
passwords in a row (within ``_FORGET_AFTER``) a login name is locked for 30 s,
doubling with every further failure up to 15 minutes; while locked, no
password is checked at all (the right one neither), and a right password
afterwards clears the count. At the cap that is under 100 guesses a day per
account, whatever the attacker's bandwidth.

Unknown login names are counted the same way, so a lock-out does not tell an
attacker which accounts exist; names are stored only as SHA-256 hashes, so a
mistyped name (or an erased person's handle tried later) is not kept in clear. The price is the usual one: anybody can lock a
known login for up to 15 minutes by failing on purpose; the admin console and
the CLI (``deskcorder portal set-password``, which clears the count) still work.
Rows older than a day are dropped on the next failure, so junk names do not pile up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from ._control import as_utc
from ._tables import login_failures

__all__ = ["LockedOut", "FREE_FAILURES", "check_not_locked", "record_failure", "clear_failures"]

FREE_FAILURES = 5
_FIRST_LOCK = dt.timedelta(seconds=30)
_MAX_LOCK = dt.timedelta(minutes=15)
_FORGET_AFTER = dt.timedelta(hours=1)  # a failure this old no longer counts towards a lock
_PURGE_AFTER = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class LockedOut:
    """The login name is locked until ``until``."""

    until: dt.datetime

    def retry_after_s(self, now: dt.datetime) -> int:
        return max(1, int((self.until - now).total_seconds() + 0.999))


def _hash(login: str) -> str:
    return hashlib.sha256(f"deskcorder-login:{login}".encode()).hexdigest()


def _of(login: str) -> Any:
    return login_failures.c.login_hash == _hash(login)


def check_not_locked(conn: Connection, login: str, now: dt.datetime) -> LockedOut | None:
    until = conn.execute(select(login_failures.c.locked_until).where(_of(login))).scalar()
    if until is not None and as_utc(until) > now:
        return LockedOut(as_utc(until))
    return None


def record_failure(conn: Connection, login: str, now: dt.datetime) -> LockedOut | None:
    """Count one failed password for ``login``; the lock it starts, if any."""
    conn.execute(delete(login_failures).where(login_failures.c.last_failure_at < now - _PURGE_AFTER))
    row = conn.execute(select(login_failures.c.failures, login_failures.c.last_failure_at).where(_of(login))).first()
    failures = 1 if row is None or as_utc(row.last_failure_at) < now - _FORGET_AFTER else row.failures + 1
    locked_until = None
    if failures >= FREE_FAILURES:
        locked_until = now + min(_MAX_LOCK, _FIRST_LOCK * 2 ** min(failures - FREE_FAILURES, 16))
    values = {"failures": failures, "last_failure_at": now, "locked_until": locked_until}
    if row is not None:
        conn.execute(update(login_failures).where(_of(login)).values(**values))
    else:
        try:
            with conn.begin_nested():
                conn.execute(login_failures.insert().values(login_hash=_hash(login), **values))
        except IntegrityError:  # a concurrent failure inserted it first: one failure more or less is harmless
            conn.execute(update(login_failures).where(_of(login)).values(**values))
    return LockedOut(locked_until) if locked_until is not None else None


def clear_failures(conn: Connection, login: str) -> None:
    conn.execute(delete(login_failures).where(_of(login)))
