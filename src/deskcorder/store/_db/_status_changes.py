"""Whose recording status changed: said inside the transaction that changes it, heard after it commits.

The collector pushes status to agents (``collect/_status_push.py``) instead of
having them poll, so every write that can change a device's answer to
``GET /v1/devices/{id}/status`` (a consent act, a pause or resume, a new
policy, a revocation, an erasure) calls ``note(conn, key)`` once. ``key`` is

    ``employee:<employee_id>``  every device of that employee
    ``device:<device_id>``      that device
    ``all``                     every device (a new policy)

In this process the keys reach ``EventStore.on_status_change`` listeners once
the transaction has committed (``EventStore._db``); a rolled-back change
announces nothing. On PostgreSQL the same key also goes out with
``pg_notify`` on ``CHANNEL`` inside the transaction, which PostgreSQL delivers
to every listening session only on commit: so the other collectors of a fleet
(``fleet/_status_bus.py``), and changes made by the CLI on another machine,
are heard too. Its payload names this process (``ORIGIN``) so a collector
skips what it already heard in process.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, text

__all__ = ["CHANNEL", "ORIGIN", "note", "pending", "parse_payload"]

CHANNEL = "deskcorder_status"
ORIGIN = uuid.uuid4().hex[:16]  # this process, in every payload it sends
_PENDING = "deskcorder_status_changes"  # conn.info key: the keys noted in the open transaction


def note(conn: Connection, key: str) -> None:
    """Record that ``key``'s status changes in this transaction (announced after commit)."""
    conn.info.setdefault(_PENDING, []).append(key)
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": f"{ORIGIN} {key}"})


def pending(conn: Connection) -> list[str]:
    """The keys noted in this connection's transaction, forgotten here (so a pooled connection starts clean)."""
    return conn.info.pop(_PENDING, None) or []


def parse_payload(payload: str) -> str | None:
    """The key of a notification from another process; None for this process's own or a malformed one."""
    origin, _, key = payload.partition(" ")
    if origin == ORIGIN or not key.startswith(("employee:", "device:", "all")):
        return None
    return key
