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
Rows older than a day are dropped after the next failure, so junk names do not pile up.

Why an attempt is counted *before* its password is checked
---------------------------------------------------------
Checking a password (argon2) takes tens of milliseconds. Counting after the
check let every request that arrived during those milliseconds see the name
unlocked: 120 wrong passwords sent 60 at a time had 43 of them checked. So
``reserve_attempt`` counts the attempt as a failure first, in a transaction
of its own that holds the name's row lock (``SELECT ... FOR UPDATE`` on
PostgreSQL; on SQLite the first statement is a write, which takes the
database's write lock at once), and commits before the password is looked
at; ``clear_failures`` forgets the count when the password was right. The
attempt that brings the count to ``FREE_FAILURES`` starts the lock, so at
most ``FREE_FAILURES`` passwords are checked however many arrive at once,
the same bound as one after the other.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .._db._engine import as_utc
from .._db._tables import login_failures

__all__ = ["LockedOut", "FREE_FAILURES", "reserve_attempt", "purge_old", "clear_failures"]

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


def reserve_attempt(conn: Connection, login: str, now: dt.datetime) -> LockedOut | None:
    """Count one attempt on ``login`` as a failure before its password is checked (see the module docstring).

    Returns the lock in force, if any, and then counts nothing: no password may
    be checked. Otherwise the attempt is counted, starting a lock when it is the
    ``FREE_FAILURES``-th; the caller commits before checking the password and
    calls ``clear_failures`` if it was right. Run it alone in its transaction.
    """
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    # First statement a write: on SQLite it takes the write lock now, so the read below is current
    # (a read first would pin an older snapshot). On PostgreSQL it makes sure there is a row to lock.
    conn.execute(insert(login_failures).values(login_hash=_hash(login), failures=0, last_failure_at=now,
                                               locked_until=None).on_conflict_do_nothing())
    row = conn.execute(select(login_failures.c.failures, login_failures.c.last_failure_at,
                              login_failures.c.locked_until).where(_of(login)).with_for_update()).one()
    if row.locked_until is not None and as_utc(row.locked_until) > now:
        return LockedOut(as_utc(row.locked_until))
    failures = 1 if as_utc(row.last_failure_at) < now - _FORGET_AFTER else row.failures + 1
    locked_until = None
    if failures >= FREE_FAILURES:
        locked_until = now + min(_MAX_LOCK, _FIRST_LOCK * 2 ** min(failures - FREE_FAILURES, 16))
    conn.execute(update(login_failures).where(_of(login))
                 .values(failures=failures, last_failure_at=now, locked_until=locked_until))
    return None


def purge_old(conn: Connection, now: dt.datetime) -> None:
    """Drop the counts of names not tried for a day. Not in ``reserve_attempt``'s transaction: there it
    would wait for other names' row locks while holding its own (PostgreSQL could deadlock)."""
    conn.execute(delete(login_failures).where(login_failures.c.last_failure_at < now - _PURGE_AFTER))


def clear_failures(conn: Connection, login: str) -> None:
    conn.execute(delete(login_failures).where(_of(login)))
