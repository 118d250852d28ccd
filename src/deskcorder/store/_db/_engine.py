"""The control database's engine: one pool per process, SQLite's durability pragmas, its WAL truncation.

SQLite and PostgreSQL are the two control databases spoken; ``make_engine``
refuses any other, so a dialect check anywhere else can assume one of them.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event

from .._errors import StoreError

__all__ = ["make_engine", "as_utc", "truncate_wal", "vacuum_full"]

_SQLITE_BUSY_TIMEOUT_MS = 30_000
# Connections kept open per process. The collector runs blocking store calls on up to 40 worker
# threads (anyio's default); with SQLAlchemy's default of 5, every connection beyond the fifth
# was closed on return, so under load ~0.4 of all status polls started a new PostgreSQL backend
# (3.7 of the 4 ms PostgreSQL spent per poll; benchmarks/status_poll.py). Size max_connections
# (or a PgBouncer) for processes x _POOL_SIZE.
_POOL_SIZE = 20
_POOL_OVERFLOW = 20


def make_engine(url: str) -> Engine:
    engine = create_engine(url, pool_size=_POOL_SIZE, max_overflow=_POOL_OVERFLOW)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif engine.dialect.name != "postgresql":
        engine.dispose()
        raise StoreError(f"unsupported control database {engine.dialect.name!r} in {url!r}; "
                         f"use sqlite:///path or postgresql://...")
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers (the listing endpoints, the dataset builder) never block the writer.
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk when it returns, in WAL mode too; the collector acks after it.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    # Deleted rows (an erased employee's wrapped key, handle, consents) are overwritten with
    # zeros instead of lingering in free space; truncate_wal then removes the old WAL copies.
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def truncate_wal(engine: Engine, attempts: int = 50) -> bool:
    """SQLite: copy the WAL into the database and empty it, so no old page versions remain on disk.

    Needs a moment with no reader mid-query (other processes included); retried
    for about a second. Returns whether it succeeded; always True on PostgreSQL,
    which has no such file in the data dir.
    """
    if engine.dialect.name != "sqlite":
        return True
    for _ in range(attempts):
        with engine.connect() as conn:
            busy, _log, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            conn.commit()
        if not busy:
            return True
        time.sleep(0.02)
    return False


def vacuum_full(engine: Engine, tables: tuple[str, ...]) -> None:
    """PostgreSQL: rewrite these tables, so the dead versions of deleted or updated rows go (no-op on SQLite,
    where ``secure_delete`` zeroes them)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.exec_driver_sql(f"VACUUM FULL {table}")


def as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
