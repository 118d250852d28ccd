"""Per-device token buckets in the control database, shared by every fleet collector.

One row per device in ``device_rate_limits``: ``tokens`` at ``updated_at`` (the
collectors' wall clock; a monotonic clock means nothing to another machine).
``take_token`` refills the bucket by the time since ``updated_at`` (at most up to
``burst``) and takes one token, in one ``INSERT ... ON CONFLICT DO UPDATE``: a
device's first batch inserts a full bucket less one, every later one updates the
row under the row lock that ON CONFLICT takes, so collectors racing on a device
queue on that lock and each sees the bucket the one before it left.

The update only happens when a whole token is there (its WHERE): a refused batch
leaves the row as it was, which is the same bucket (refill is linear, and below
one token the cap is not reached), so tokens never go below 0 and a refusal
costs the device nothing. The statement returns the row only when it took a
token, so the decision is that one statement; a refused batch then reads the
(unchanged, on PostgreSQL still locked) row for its Retry-After, which the
upsert cannot return: RETURNING sees only rows it changed.

On PostgreSQL the transaction commits with ``synchronous_commit = off``: it saves
a WAL flush per batch, and a database crash can only lose the last fraction of a
second of bucket updates (``wal_writer_delay``), which gives devices back tokens
they had spent; no batch is acknowledged on a bucket's strength. SQLite keeps
the store's synchronous commits (tests, one machine: a fleet uses PostgreSQL).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from sqlalchemy import Engine, Float, bindparam, case, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from .._errors import StoreError
from ._tables import device_rate_limits

__all__ = ["TokenDecision", "take_token"]


@dataclasses.dataclass(frozen=True)
class TokenDecision:
    """Whether the batch may pass, and the tokens in the device's bucket at ``now`` after it."""

    allowed: bool
    tokens: float


@functools.cache
def _statements(dialect: str) -> tuple[Any, Any]:
    """The take-a-token upsert and the bucket read for one dialect, built once."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    t = device_rate_limits
    now, rate, burst = (bindparam(name, type_=Float) for name in ("now", "rate", "burst"))
    # Another collector's clock may be ahead: never refill for negative time, never move
    # updated_at back (that would hand the device the skew as tokens on every alternation).
    ahead = now > t.c.updated_at
    filled = t.c.tokens + case((ahead, now - t.c.updated_at), else_=0.0) * rate
    # CASE, not min()/LEAST(): the one spelling both databases accept.
    refilled = case((filled < burst, filled), else_=burst)
    upsert = insert(t).values(device_id=bindparam("device_id"), tokens=burst - 1.0, updated_at=now)
    upsert = upsert.on_conflict_do_update(
        index_elements=[t.c.device_id],
        set_={"tokens": refilled - 1.0, "updated_at": case((ahead, now), else_=t.c.updated_at)},
        where=refilled >= 1.0,
    ).returning(t.c.tokens)
    bucket = select(t.c.tokens, t.c.updated_at).where(t.c.device_id == bindparam("device_id"))
    return upsert, bucket


def take_token(engine: Engine, device_id: str, *, rate_per_s: float, burst: int, now: float) -> TokenDecision:
    """Take one token from ``device_id``'s shared bucket if it has one (``now``: epoch seconds).

    The device must be in ``devices`` (the row's foreign key): call this after
    authenticating it. Raises StoreError when the control database fails.
    """
    if rate_per_s <= 0 or burst < 1:
        raise ValueError(f"rate must be > 0 and burst >= 1, got {rate_per_s}, {burst}")
    upsert, bucket = _statements(engine.dialect.name)
    params = {"device_id": device_id, "now": now, "rate": float(rate_per_s), "burst": float(burst)}
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            taken = conn.execute(upsert, params).first()
            if taken is not None:
                return TokenDecision(True, float(taken.tokens))
            # Refused: the row is unchanged (and, on PostgreSQL, still locked by this transaction).
            tokens, at = conn.execute(bucket, params).one()
    except SQLAlchemyError as exc:
        # The driver's words on one line, without the long statement SQLAlchemy appends.
        cause = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise StoreError(f"control database error while checking the rate limit of device {device_id!r}: {cause}; "
                         f"nothing was accepted, retry the batch") from exc
    return TokenDecision(False, min(float(burst), tokens + max(0.0, now - at) * rate_per_s))
