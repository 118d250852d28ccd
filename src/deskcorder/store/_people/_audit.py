"""The audit log: an append-only, SHA-256 hash-chained record of who did what to whose data, and why.

Each row's ``hash`` is SHA-256 over a canonical JSON serialisation of the row
(id, at, actor, action, target, reason, details, prev_hash), and ``prev_hash``
is the previous row's ``hash`` (64 zeros for row 1). Ids are contiguous from 1.
So editing any column of a row, deleting a row, or re-ordering rows breaks the
chain at that row; ``audit_head`` holds the last id and hash, so cutting rows
off the end shows too. This is tamper-evidence, not tamper-proofing: someone
who can write the database can recompute the whole chain. Copy ``deskcorder
audit verify``'s head hash somewhere they cannot write (a ticket, an email) to
pin it.

Appending locks ``audit_head`` first (an UPDATE: a row lock on PostgreSQL, the
write lock on SQLite), so concurrent appenders in any process take turns and
the chain never forks. Callers doing an audited change call ``lock_chain``
before anything else in their transaction, so their change and its audit
entry commit together, or neither does.

Names in entries: a person only as ``employee:<employee_id>`` (opaque, random)
and a device only as a hash (``device_ref``), never a handle, name or hostname,
so an erasure leaves entries that no longer point at anyone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from typing import Any, Iterator

from sqlalchemy import Connection, or_, select, update

from .._errors import InvalidInput
from .._db._tables import audit_head, audit_log

__all__ = ["AuditEntry", "GENESIS_HASH", "lock_chain", "append", "verify_chain", "entries", "employee_target",
           "device_ref", "iso_utc"]

GENESIS_HASH = "0" * 64
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    reason: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "at": iso_utc(self.at)}


def employee_target(employee_id: str) -> str:
    return f"employee:{employee_id}"


def device_ref(device_id: str) -> str:
    """A device as the audit log names it: a hash, since device ids are often hostnames."""
    return "device:" + hashlib.sha256(b"deskcorder device\x00" + device_id.encode()).hexdigest()[:16]


def iso_utc(value: dt.datetime) -> str:
    value = value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def _row_hash(id_: int, at: str, actor: str, action: str, target: str, reason: str, details: str,
              prev_hash: str) -> str:
    canonical = json.dumps({"id": id_, "at": at, "actor": actor, "action": action, "target": target,
                            "reason": reason, "details": details, "prev_hash": prev_hash},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def lock_chain(conn: Connection) -> tuple[int, str]:
    """Take the chain's lock for this transaction; returns (last id, last hash)."""
    conn.execute(update(audit_head).where(audit_head.c.id == 1).values(last_id=audit_head.c.last_id))
    row = conn.execute(select(audit_head.c.last_id, audit_head.c.last_hash).where(audit_head.c.id == 1)).one()
    return row.last_id, row.last_hash


def _check(actor: str, action: str, target: str, reason: str) -> None:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 256:
        raise InvalidInput(f"actor must name who acts (1-256 characters), got {actor!r}", field="actor")
    if not _ACTION.match(action or "") or len(action) > 64:
        raise InvalidInput(f"audit action must be dotted lowercase words like 'dataset.build', got {action!r}",
                           field="action")
    if not isinstance(target, str) or not target or len(target) > 256:
        raise InvalidInput(f"audit target must be 1-256 characters, got {target!r}", field="target")
    if not isinstance(reason, str):
        raise InvalidInput(f"audit reason must be text, got {type(reason).__name__}", field="reason")


def append(conn: Connection, *, actor: str, action: str, target: str, reason: str,
           details: dict[str, Any] | None = None) -> AuditEntry:
    """Append one entry in the caller's transaction (committed with it)."""
    _check(actor, action, target, reason)
    try:
        details_text = json.dumps(details or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                                  allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"audit details must be JSON (strings, numbers, lists, objects): {exc}",
                           field="details") from exc
    last_id, last_hash = lock_chain(conn)
    at = dt.datetime.now(dt.timezone.utc)
    id_ = last_id + 1
    digest = _row_hash(id_, iso_utc(at), actor, action, target, reason, details_text, last_hash)
    conn.execute(audit_log.insert(), {"id": id_, "at": at, "actor": actor, "action": action, "target": target,
                                      "reason": reason, "details": details_text, "prev_hash": last_hash,
                                      "hash": digest})
    conn.execute(update(audit_head).where(audit_head.c.id == 1).values(last_id=id_, last_hash=digest))
    return AuditEntry(id_, at, actor, action, target, reason, json.loads(details_text), last_hash, digest)


def verify_chain(conn: Connection) -> int | None:
    """The id of the first row that is missing or altered, or None when the whole chain holds."""
    expected_id, prev = 1, GENESIS_HASH
    rows = conn.execution_options(stream_results=True, yield_per=1000).execute(
        select(audit_log).order_by(audit_log.c.id))
    for r in rows:
        if r.id != expected_id:
            return expected_id  # a deleted row (or an edited id)
        if r.prev_hash != prev or _row_hash(r.id, iso_utc(r.at), r.actor, r.action, r.target, r.reason,
                                            r.details, r.prev_hash) != r.hash:
            return r.id
        prev, expected_id = r.hash, expected_id + 1
    last = expected_id - 1
    head = conn.execute(select(audit_head.c.last_id, audit_head.c.last_hash).where(audit_head.c.id == 1)).one()
    if (head.last_id, head.last_hash) == (last, prev):
        return None
    if head.last_id > last:
        return last + 1  # rows cut off the end
    return head.last_id + 1 if head.last_id < last else last


def entries(conn: Connection, *, action: str | None = None, about_employee: str | None = None,
            limit: int | None = None) -> list[AuditEntry]:
    """Entries oldest first; with ``limit``, the newest ``limit`` of them."""
    query = select(audit_log).order_by(audit_log.c.id.desc())
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if about_employee is not None:
        # Reads that touch several employees list their ids in details.employee_ids (autoescape: the
        # "_" in an id is a LIKE wildcard).
        query = query.where(or_(audit_log.c.target == employee_target(about_employee),
                                audit_log.c.details.contains(f'"{about_employee}"', autoescape=True)))
    if limit is not None:
        query = query.limit(limit)
    return [_entry(r) for r in reversed(conn.execute(query).all())]


def _entry(r: Any) -> AuditEntry:
    at = r.at if r.at.tzinfo is not None else r.at.replace(tzinfo=dt.timezone.utc)
    return AuditEntry(r.id, at, r.actor, r.action, r.target, r.reason, json.loads(r.details), r.prev_hash, r.hash)


def iter_all(conn: Connection) -> Iterator[AuditEntry]:
    for r in conn.execute(select(audit_log).order_by(audit_log.c.id)):
        yield _entry(r)
